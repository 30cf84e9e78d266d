"""Child-side evidence probes, used by the Recorder (flakehunt.recorder) when enabled.

- fixture timeline: which fixtures a test set up (fresh) or reused (cached),
  where they are defined, which threads their set-up started;
- failure anatomy: the fixture whose code raised, the fixtures whose objects
  sit in the failing frames, event loops met there (closed? whose?);
- loop provenance: every event loop is stamped at creation with the test,
  phase and fixture that made it;
- state snapshots of the project's own module globals (and one level into the
  objects they hold), environment, cwd, sys.path, logging handlers: what a
  test changed and did not restore, in the spirit of regrtest's check;
- exception chains: a failure's exception, its causes, contexts and group members.

Every probe is best effort: it must never change the outcome of a test.
"""

from __future__ import annotations

import asyncio
import inspect
import linecache
import logging
import re
import threading
import types
import weakref
from collections.abc import Callable, Coroutine, Generator, Iterator
from typing import Any, TypedDict

from flakehunt import owners
from flakehunt.snapshot import project_file
from flakehunt.wire import Anatomy, ChainLink, Holder, LoopFacts, TaskInfo

#: the attribute a stamped event loop carries its :class:`LoopStamp` in
ORIGIN_ATTR = "_flakehunt_origin"

class Origin(TypedDict):
    """Where the process was when something was created: test, phase, fixture, thread."""

    test: str | None
    phase: str | None
    fixture: str | None
    #: pytest's or a plugin's fixture being set up (on behalf of ``fixture``), if any
    via: str | None
    thread: str


class LoopStamp(Origin):
    """An event loop's origin: its label and the context that created it."""

    label: str


def walk_exceptions(exc: BaseException | None, limit: int = 12) -> Iterator[BaseException]:
    """The exception, its causes/contexts and group members, outermost first, once each."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo and len(seen) < limit:
        e = todo.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend(getattr(e, "exceptions", ()) or ())
        todo.append(e.__cause__ or e.__context__)


def exception_chain(exc: BaseException | None, limit: int = 12) -> list[ChainLink]:
    return [{"type": type(e).__qualname__, "module": type(e).__module__,
             "message": str(e)[:1000]} for e in walk_exceptions(exc, limit)]


def fixture_location(func: Callable[..., object],
                     rootdir: str) -> tuple[str, types.CodeType | None]:
    try:
        real = inspect.unwrap(func)
        code = real.__code__
    except Exception:
        return ("?", None)
    path = code.co_filename
    if path.startswith(rootdir):
        path = path[len(rootdir):]
    return (f"{path}:{code.co_firstlineno}", code)


def wrapped_user_code(func: Callable[..., object],
                      rootdir: str) -> tuple[str, types.CodeType] | None:
    """The project's function a pytest or plugin fixture calls, found among the values
    its closure holds (unittest's ``setUpClass``, an xunit ``setup_method``): its
    qualified name (``TestX.setUpClass``) and code."""
    for cell in getattr(func, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        target = getattr(value, "__func__", value)
        code = getattr(target, "__code__", None)
        if isinstance(code, types.CodeType) and project_file(code.co_filename, rootdir):
            owner = getattr(value, "__self__", None)
            cls = owner if isinstance(owner, type) else type(owner) if owner else None
            name = f"{cls.__qualname__}.{target.__name__}" if cls is not None \
                else getattr(target, "__qualname__", code.co_name)
            return name, code
    return None


class LoopStamps:
    """Stamp every event loop created in this process with who created it."""

    def __init__(self, context: Callable[[], Origin]) -> None:
        self.context = context
        self.count = 0
        self.original: Callable[..., None] | None = None
        self.created: list[LoopStamp] = []
        self.loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
        self.task_origin: weakref.WeakKeyDictionary[asyncio.Task[Any], Origin] = \
            weakref.WeakKeyDictionary()
        self.lock = threading.Lock()

    def task_factory(self, loop: asyncio.AbstractEventLoop,
                     coro: Coroutine[Any, Any, Any] | Generator[Any, None, Any],
                     **kwargs: Any) -> asyncio.Task[Any]:
        task = asyncio.Task(coro, loop=loop, **kwargs)
        try:
            with self.lock:
                self.task_origin[task] = self.context()
        except Exception:
            pass
        return task

    def pending_tasks(self, rootdir: str = "") -> list[TaskInfo]:
        """Tasks still pending on open loops, with the fixture that created them."""
        out: list[TaskInfo] = []
        with self.lock:
            loops = list(self.loops)
        for loop in loops:
            try:
                if loop.is_closed():
                    continue
                tasks = list(asyncio.all_tasks(loop))
            except Exception:
                continue
            for task in tasks:
                with self.lock:
                    origin = self.task_origin.get(task)
                fixture = origin.get("fixture") if origin else None
                via = origin.get("via") if origin else None
                if origin and (fixture or via) and not task.done():
                    coro = task.get_coro()
                    code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
                    out.append({"task": getattr(coro, "__qualname__", repr(coro))[:80],
                                "user": bool(code and project_file(code.co_filename, rootdir)),
                                "fixture": fixture or "", "test": origin.get("test"),
                                "phase": origin.get("phase"), "via": via or "",
                                "writes": [c for c in getattr(code, "co_consts", ())
                                           if isinstance(c, str) and 0 < len(c) <= 40
                                           and " " not in c][:20]})
        out.sort(key=lambda t: not t["user"])
        return out

    def install(self) -> None:
        base = asyncio.BaseEventLoop
        original = base.__init__
        stamps = self

        def __init__(loop: asyncio.BaseEventLoop, *args: Any, **kwargs: Any) -> None:
            original(loop, *args, **kwargs)
            try:
                stamps.count += 1
                origin: LoopStamp = {"label": f"loop#{stamps.count}", **stamps.context()}
                setattr(loop, ORIGIN_ATTR, origin)
                stamps.created.append(origin)
                with stamps.lock:
                    stamps.loops.add(loop)
                if loop.get_task_factory() is None:
                    loop.set_task_factory(stamps.task_factory)
            except Exception:
                pass

        self.original = original
        base.__init__ = __init__  # type: ignore[method-assign, assignment]  # the patch

    def uninstall(self) -> None:
        if self.original is not None:
            asyncio.BaseEventLoop.__init__ = self.original  # type: ignore[method-assign]
            self.original = None


def loop_of(obj: object) -> asyncio.AbstractEventLoop | None:
    """The event loop an object is bound to, if it is a loop or holds one."""
    if isinstance(obj, asyncio.AbstractEventLoop):
        return obj
    try:
        loop = obj.__dict__.get("_loop") if hasattr(obj, "__dict__") else None
        if loop is None and isinstance(obj, asyncio.Future):
            loop = obj.get_loop()
    except Exception:
        return None
    return loop if isinstance(loop, asyncio.AbstractEventLoop) else None


def loop_facts(loop: asyncio.AbstractEventLoop) -> LoopFacts:
    origin = getattr(loop, ORIGIN_ATTR, {}) or {}
    try:
        closed = loop.is_closed()
    except Exception:
        closed = None
    return {"label": origin.get("label", f"loop@{id(loop):x}"), "closed": closed,
            "created_by_test": origin.get("test"), "created_in_phase": origin.get("phase"),
            "created_by_fixture": origin.get("fixture"), "created_via": origin.get("via"),
            "thread": origin.get("thread")}


def frames_of(exc: BaseException) -> list[types.FrameType]:
    frames: list[types.FrameType] = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    return frames


def anatomy(exc: BaseException | None, fixture_values: dict[str, object],
            code_index: dict[types.CodeType, str], test_code: types.CodeType | None,
            this_test: str, rootdir: str, routes: dict[str, object] | None = None) -> Anatomy:
    """Which fixtures and loops a failure touched. ``fixture_values`` are the user's
    fixtures' values (the only ones ever named as involved or as a holder's fixture);
    ``routes`` pytest's and plugins' fixtures' values, named only as the way an
    object was handed over."""
    if exc is None:
        return {}
    reached = owners.owner_map(fixture_values)
    via = owners.owner_map(routes or {})
    raised_in = None
    on_line: list[str] = []
    involved: dict[str, str] = {}
    routed: dict[str, str] = {}
    loops: dict[int, LoopFacts] = {}
    holders: list[Holder] = []
    reads: dict[str, None] = {}
    for e in walk_exceptions(exc, 8):
        for frame in frames_of(e):
            code = frame.f_code
            if project_file(code.co_filename, rootdir):
                reads.update(dict.fromkeys(names_read(code)))
            if code in code_index:
                raised_in = code_index[code]
            try:
                local_items = list(frame.f_locals.items())
            except Exception:
                continue
            in_test = code is test_code
            if in_test:
                named = names_on_line(code.co_filename, frame.f_lineno, e, fixture_values)
                on_line.extend(n for n in named if n not in on_line)
            for lname, obj in local_items:
                if owners.shared(obj):
                    continue
                for found, into in ((reached, involved), (via, routed)):
                    hit = found.get(id(obj))
                    if hit and not in_test:
                        into.setdefault(hit[0], f"`{hit[0]}`{hit[1]} is `{lname}` in "
                                                f"{code.co_name}()")
                loop = loop_of(obj)
                if loop is not None and id(loop) not in loops:
                    facts = loop_facts(loop)
                    facts["met_as"] = f"{lname} in {code.co_name}()"
                    loops[id(loop)] = facts
                    if is_foreign(facts, this_test):
                        holder = holder_of(loop, local_items, reached, fixture_values, via)
                        if holder:
                            holders.append({**holder, "loop": facts["label"]})
    foreign = [f for f in loops.values() if is_foreign(f, this_test)]
    out: Anatomy = {"raised_in_fixture": raised_in, "involved": involved,
                    "on_failing_line": on_line, "loops": list(loops.values()),
                    "foreign_loops": foreign, "holders": holders}
    if routed:
        out["routes"] = routed
    if reads:
        out["reads"] = list(reads)[:300]
    return out


def names_read(code: types.CodeType) -> list[str]:
    """The global and attribute names a function refers to, and its short string
    constants (an environment variable's or a logger's name)."""
    consts = [c for c in code.co_consts if isinstance(c, str) and 0 < len(c) <= 60
              and " " not in c]
    return [*code.co_names, *consts]


def names_on_line(filename: str, lineno: int, exc: BaseException,
                  fixture_values: dict[str, object]) -> list[str]:
    """Fixture argument names used on the line where the test failed."""
    tb = exc.__traceback__
    line = ""
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = linecache.getline(filename, tb.tb_lineno)
        tb = tb.tb_next
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", line))
    return [name for name in fixture_values if name in words]


def is_foreign(facts: LoopFacts, this_test: str) -> bool:
    """Closed, or made for another test: not the loop this test runs on."""
    return bool(facts["closed"]) or facts["created_by_test"] not in (None, this_test)


def holder_of(loop: asyncio.AbstractEventLoop, local_items: list[tuple[str, object]],
              reached: dict[int, tuple[str, str]], fixture_values: dict[str, object],
              via: dict[int, tuple[str, str]]) -> Holder | None:
    """An object that keeps ``loop`` as an attribute - in the failing frame, or reached
    from a user fixture's value - and the user fixture whose value reaches it."""
    first: Holder | None = None
    roots = [(n, o) for n, o in local_items if not owners.shared(o)]
    for group, depth in ((roots, 2), (list(fixture_values.items()), owners.DEPTH)):
        for obj, attr, path in owners.holders(loop, group, depth):
            fixture, fpath = reached.get(id(obj), (None, ""))
            found: Holder = {"object": type(obj).__qualname__, "attribute": attr,
                             "fixture": fixture, "fixture_path": fpath,
                             "local": path}
            if fixture is None and id(obj) in via:
                found["route"] = via[id(obj)][0]
            if fixture is not None:
                return found
            first = first or found
    return first


class AsyncioLogTap(logging.Handler):
    """Collects what the asyncio logger says during a test (destroyed tasks...)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.messages.append(record.getMessage().splitlines()[0][:300])
        except Exception:
            pass

    def take(self) -> list[str]:
        out, self.messages = self.messages, []
        return out


def thread_names() -> dict[int, str]:
    return {t.ident or id(t): t.name for t in threading.enumerate()}
