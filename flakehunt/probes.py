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
import collections
import inspect
import linecache
import logging
import os
import re
import sys
import threading
import types
import weakref
from collections.abc import Callable, Coroutine, Generator, Iterator, Sized
from pathlib import Path
from typing import Any, TypedDict

from flakehunt.wire import Anatomy, ChainLink, Holder, LoopFacts, StateChange, TaskInfo

CONTAINERS = (dict, list, set, collections.deque)
SCALARS = (int, float, str, bool, bytes, type(None))
SKIP_TYPES = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType,
              types.MethodType, property, classmethod, staticmethod)
#: the common skipped types, matched exactly first (cheaper than isinstance on them all)
SKIP_EXACT = frozenset((types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType))
MAX_ATTRS = 60
VOLATILE_ENV = ("PYTEST_CURRENT_TEST",)
MAX_KEYS = 20000
#: the attribute a stamped event loop carries its :class:`LoopStamp` in
ORIGIN_ATTR = "_flakehunt_origin"

#: one snapshot entry: its kind ("len", "value", "id", "env", "cwd", "type"), then details
Entry = tuple[Any, ...]
#: a state snapshot: a global's (or a pseudo-key's, like ``<env>``) name -> its entry
Snapshot = dict[str, Entry]


class Origin(TypedDict):
    """Where the process was when something was created: test, phase, fixture, thread."""

    test: str | None
    phase: str | None
    fixture: str | None
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


def home_module(value: object, name: str, mod: types.ModuleType) -> str:
    """Name a re-exported object by the module that defines its class, if it holds it."""
    home = getattr(type(value), "__module__", None)
    if home and home != mod.__name__:
        other = sys.modules.get(home)
        if other is not None and getattr(other, name, None) is value:
            return home
    return mod.__name__


def describe_size(value: Sized) -> tuple[int, int]:
    """(len, items inside nested containers), both capped."""
    try:
        n = len(value)
    except Exception:
        return (-1, -1)
    inner = 0
    if isinstance(value, dict):
        for i, v in enumerate(value.values()):
            if i > 1000:
                break
            if isinstance(v, CONTAINERS):
                inner += len(v)
    return (n, inner)


def project_file(path: str | None, rootdir: str) -> bool:
    if not path:
        return False
    return path.startswith(rootdir) and "site-packages" not in path \
        and f"{os.sep}.venv{os.sep}" not in path


class StateTracker:
    """Snapshots of the project's mutable module-level state."""

    def __init__(self, rootdir: Path) -> None:
        self.rootdir = str(rootdir) + os.sep
        self.modules: list[types.ModuleType] = []
        self.known = 0
        self.ids: dict[int, str] = {}

    def project_modules(self) -> list[types.ModuleType]:
        if len(sys.modules) != self.known:
            self.known = len(sys.modules)
            mods = [m for m in list(sys.modules.values())
                    if isinstance(m, types.ModuleType)
                    and project_file(getattr(m, "__file__", None), self.rootdir)]
            self.modules = sorted(mods, key=lambda m: m.__name__)
        return self.modules

    def snapshot(self) -> Snapshot:
        snap: Snapshot = {}
        seen: set[int] = set()
        self.ids = {}  # id of a global (or its attribute) -> its name
        for mod in self.project_modules():
            try:
                items = list(vars(mod).items())
            except Exception:
                continue
            for name, value in items:
                if type(value) in SKIP_EXACT or name.startswith("__") or id(value) in seen \
                        or isinstance(value, SKIP_TYPES):
                    continue
                seen.add(id(value))
                key = f"{home_module(value, name, mod)}.{name}"
                self.ids.setdefault(id(value), key)
                self.record(snap, key, value)
                if not isinstance(value, CONTAINERS + SCALARS) and hasattr(value, "__dict__"):
                    try:
                        attrs = list(vars(value).items())[:MAX_ATTRS]
                    except Exception:
                        continue
                    for attr, v in attrs:
                        if not isinstance(v, SKIP_TYPES):
                            self.record(snap, f"{key}.{attr}", v)
                if len(snap) > MAX_KEYS:
                    return snap
        env = {k: v for k, v in os.environ.items() if k not in VOLATILE_ENV}
        snap["<env>"] = ("env", hash(frozenset(env.items())), tuple(sorted(env)))
        try:
            snap["<cwd>"] = ("cwd", os.getcwd())
        except OSError:
            snap["<cwd>"] = ("cwd", None)
        snap["<sys.path>"] = ("len", len(sys.path), 0)
        snap["<logging handlers>"] = ("len", len(logging.getLogger().handlers), 0)
        try:
            policy = type(asyncio.get_event_loop_policy()).__name__
        except Exception:
            policy = None
        snap["<event loop policy>"] = ("type", policy)
        return snap

    @staticmethod
    def record(snap: Snapshot, key: str, value: object) -> None:
        if isinstance(value, CONTAINERS):
            snap[key] = ("len", *describe_size(value))
        elif isinstance(value, SCALARS):
            snap[key] = ("value", repr(value)[:60])
        else:
            snap[key] = ("id", id(value), type(value).__name__)

    @staticmethod
    def diff(before: Snapshot, after: Snapshot) -> list[StateChange]:
        changes: list[StateChange] = []
        for key, new in after.items():
            old = before.get(key)
            if old == new:
                continue
            if key == "<env>":
                if old is None:
                    continue
                added = sorted(set(new[2]) - set(old[2]))
                removed = sorted(set(old[2]) - set(new[2]))
                changes.append({"what": "os.environ", "kind": "env",
                                "change": f"added {added} removed {removed}"
                                if added or removed else "values changed"})
                continue
            changes.append({"what": key, "kind": new[0], "before": show(old),
                            "after": show(new)})
        return changes


def show(entry: Entry | None) -> str:
    if entry is None:
        return "absent"
    kind = entry[0]
    if kind == "len":
        n = entry[1]
        inner = f" holding {entry[2]} items" if len(entry) > 2 and entry[2] > 0 else ""
        return f"{n} {'entry' if n == 1 else 'entries'}{inner}"
    if kind == "value":
        return entry[1]
    if kind == "id":
        return f"<{entry[2]} object>"
    return str(entry[1])


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
                if origin and fixture and not task.done():
                    coro = task.get_coro()
                    code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
                    out.append({"task": getattr(coro, "__qualname__", repr(coro))[:80],
                                "user": bool(code and project_file(code.co_filename, rootdir)),
                                "fixture": fixture, "test": origin.get("test"),
                                "phase": origin.get("phase"),
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
            "created_by_fixture": origin.get("fixture"), "thread": origin.get("thread")}


def frames_of(exc: BaseException) -> list[types.FrameType]:
    frames: list[types.FrameType] = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    return frames


def reach(value: object) -> dict[int, str]:
    """ids of a fixture value and of the objects one attribute away, with the path."""
    out = {id(value): ""}
    if isinstance(value, SKIP_TYPES + SCALARS):
        return out
    try:
        attrs = list(vars(value).items())[:MAX_ATTRS] if hasattr(value, "__dict__") else []
    except Exception:
        attrs = []
    for attr, v in attrs:
        if not isinstance(v, SCALARS):
            out.setdefault(id(v), f".{attr}")
    return out


def anatomy(exc: BaseException | None, fixture_values: dict[str, object],
            code_index: dict[types.CodeType, str], test_code: types.CodeType | None,
            this_test: str, rootdir: str) -> Anatomy:
    """Which fixtures and loops a failure touched."""
    if exc is None:
        return {}
    reached: dict[int, tuple[str, str]] = {}
    for name, value in fixture_values.items():
        for oid, path in reach(value).items():
            reached.setdefault(oid, (name, path))
    raised_in = None
    on_line: list[str] = []
    involved: dict[str, str] = {}
    loops: dict[int, LoopFacts] = {}
    holders: list[Holder] = []
    for e in walk_exceptions(exc, 8):
        for frame in frames_of(e):
            code = frame.f_code
            if code in code_index:
                raised_in = code_index[code]
            try:
                local_items = list(frame.f_locals.items())
            except Exception:
                continue
            in_test = code is test_code
            if in_test:
                named = names_on_line(code.co_filename, frame.f_lineno if frame is not
                                      None else 0, e, fixture_values)
                on_line.extend(n for n in named if n not in on_line)
            for lname, obj in local_items:
                if isinstance(obj, SCALARS):
                    continue
                hit = reached.get(id(obj))
                if hit and not in_test:
                    name, path = hit
                    involved.setdefault(name, f"{'`' + name + '`'}{path} is `{lname}` in "
                                              f"{code.co_name}()")
                loop = loop_of(obj)
                if loop is not None and id(loop) not in loops:
                    facts = loop_facts(loop)
                    facts["met_as"] = f"{lname} in {code.co_name}()"
                    loops[id(loop)] = facts
                    if is_foreign(facts, this_test):
                        holder = holder_of(loop, local_items, reached)
                        if holder:
                            holders.append({**holder, "loop": facts["label"]})
    foreign = [f for f in loops.values() if is_foreign(f, this_test)]
    return {"raised_in_fixture": raised_in, "involved": involved, "on_failing_line": on_line,
            "loops": list(loops.values()), "foreign_loops": foreign, "holders": holders}


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
              reached: dict[int, tuple[str, str]]) -> Holder | None:
    """An object in the frame that keeps ``loop`` as an attribute, and its fixture."""
    for lname, obj in local_items:
        if obj is loop or isinstance(obj, SCALARS + SKIP_TYPES) or not hasattr(obj, "__dict__"):
            continue
        try:
            attrs = list(vars(obj).items())[:MAX_ATTRS]
        except Exception:
            continue
        for attr, v in attrs:
            if v is loop or loop_of(v) is loop and not isinstance(v, asyncio.AbstractEventLoop):
                fixture, path = reached.get(id(obj), (None, ""))
                return {"object": type(obj).__qualname__, "attribute": attr,
                        "fixture": fixture, "fixture_path": path, "local": lname}
    return None


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
