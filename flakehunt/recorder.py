"""Child side: the Recorder, which streams each test's events and evidence.

Registered by the plugin (flakehunt.plugin) only when ``--flakehunt-out=DIR`` is
given, one per pytest process. It tags every report with the test's id, worker and
position (``user_properties``, which travel through xdist into the JUnit XML) and
writes one flushed JSON line per event into ``DIR/events-<worker>.jsonl`` (the
records of flakehunt.wire), so a crashed run loses nothing already measured. With
evidence on (the default) it also runs the probes (flakehunt.probes): fixtures, loops,
tasks, threads and state a test left behind, and the anatomy of every failure.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import sys
import threading
import time
import types
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, cast

import pytest

from flakehunt import owners, probes, resources, snapshot
from flakehunt.testid import base_nodeid, worker_id
from flakehunt.wire import (
    AWAIT_LIMIT,
    COLLECTED,
    MAIN_WORKER,
    OPT_AWAIT,
    OPT_EVIDENCE,
    PROFILE_APPLIED,
    PROP_NODEID,
    PROP_POSITION,
    PROP_WORKER,
    TESTS_STARTED,
    TEXT_LIMIT,
    Anatomy,
    CollectedRecord,
    EndRecord,
    EventRecord,
    FailureRecord,
    FixtureEntry,
    LoopOrigin,
    ProcessFacts,
    Resource,
    TaskInfo,
    events_file,
)

T = TypeVar("T")

#: the user_properties the recorder tags each execution with
OWN_PROPS = (PROP_NODEID, PROP_WORKER, PROP_POSITION)


class FixtureInfo(NamedTuple):
    """Where a fixture is defined: ``path:line``, its code, and whether it is the project's;
    ``blame``: the name the user knows it by - its own for the project's fixtures, the
    project's function a pytest fixture calls (``TestX.setUpClass``), else None."""

    loc: str
    code: types.CodeType | None
    user: bool
    blame: str | None = None


class FixtureSetup(NamedTuple):
    """What one fixture's set-up did for the current test."""

    threads: list[str]
    error: str | None


def cut(text: str, limit: int = TEXT_LIMIT) -> str:
    """The text, or its head and tail with a note of how much was cut between them."""
    if len(text) <= limit:
        return text
    head = limit // 5
    return f"{text[:head]}\n[... {len(text) - limit} characters cut ...]\n{text[-(limit - head):]}"


def guard(fn: Callable[[], T], default: T) -> T:
    """``fn()``, or ``default`` if it raised: a probe never changes a test's outcome."""
    try:
        return fn()
    except Exception:
        return default


class Recorder:
    """Streams test events and evidence to files; one per pytest process."""

    def __init__(self, config: pytest.Config, out: Path) -> None:
        self.config = config
        self.out = out
        self.rootdir = str(config.rootpath) + os.sep
        self.worker = worker_id()
        self.position = 0
        self.current: EndRecord | None = None
        self.nodeid: str | None = None
        self.phase: str | None = None
        self.last_item: pytest.Item | None = None
        self.running: pytest.Item | None = None  # the test whose protocol runs
        #: the fixtures being set up, innermost last: (argname, blame name or None)
        self.fixture_stack: list[tuple[str, str | None]] = []
        self.setups: dict[str, FixtureSetup] = {}  # fixture name -> its set-up for this test
        self.value_ids: dict[str, int] = {}  # fixture name -> id of the value the test got
        self.resources: dict[str, Resource] = {}  # fixture name -> what workers would share
        self.first_setup: dict[int, str] = {}  # id(FixtureDef) -> test that set it up
        self.thread_origin: dict[int, str] = {}  # thread ident -> fixture that started it
        self.fixture_info: dict[int, FixtureInfo] = {}  # id(FixtureDef) -> where it is
        self.before: snapshot.Snapshot = {}
        self.after: snapshot.Snapshot = {}  # the state when the last test's protocol ended
        self.threads_before: dict[int, str] = {}
        out.mkdir(parents=True, exist_ok=True)
        self.events = open(out / events_file(self.worker), "a", encoding="utf-8")
        self.meta = process_facts(config, self.worker)
        self.evidence = config.getoption(OPT_EVIDENCE) != "off"
        self.state = snapshot.StateTracker(config.rootpath)
        self.stamps = probes.LoopStamps(self.context)
        self.tap = probes.AsyncioLogTap()
        if self.evidence:
            self.stamps.install()
            snapshot.watch_reloads()
            logging.getLogger("asyncio").addHandler(self.tap)

    def context(self) -> probes.Origin:
        """Where the process is: the innermost user fixture being set up (pytest's or a
        plugin's fixture set up on its behalf is only the ``via``)."""
        stack = list(self.fixture_stack)
        user = next((blame for _, blame in reversed(stack) if blame), None)
        via = stack[-1][0] if stack and not stack[-1][1] else None
        return {"test": self.nodeid, "phase": self.phase, "fixture": user, "via": via,
                "thread": threading.current_thread().name}

    def write(self, record: EventRecord) -> None:
        """One flushed line per event; a full disk costs evidence, never the run."""
        try:
            self.events.write(json.dumps(record, default=str) + "\n")
            self.events.flush()
        except (OSError, ValueError):
            pass

    def mark_started(self) -> None:
        """Say the tests start; with --flakehunt-await, hold the first one until
        flakehunt has applied the profile, so every test runs under it."""
        try:
            (self.out / TESTS_STARTED).touch()
        except OSError:
            return  # flakehunt never applies the profile: the run says so (no "parent")
        if not self.config.getoption(OPT_AWAIT):
            return
        deadline = time.monotonic() + AWAIT_LIMIT
        while not (self.out / PROFILE_APPLIED).exists() and time.monotonic() < deadline:
            time.sleep(0.002)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.worker != MAIN_WORKER:
            return
        data: CollectedRecord = {
            "rootdir": str(session.config.rootpath),
            "nodeids": list(dict.fromkeys(base_nodeid(i) for i in session.items)),
            **self.meta}
        if session.config.option.collectonly and self.evidence:
            data["dead_event_loop"] = guard(lambda: self.dead_event_loop(session), [])
        if session.config.option.collectonly:
            from flakehunt import warm

            data["preload"] = guard(lambda: warm.preloadable(str(session.config.rootpath)), {})
        tmp = self.out / f"{COLLECTED}.tmp"
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(self.out / COLLECTED)

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.write({"e": "session", **self.meta})

    def pytest_unconfigure(self) -> None:
        self.stamps.uninstall()
        snapshot.unwatch_reloads()
        logging.getLogger("asyncio").removeHandler(self.tap)
        self.write({"e": "finish", "t": time.time()})
        self.events.close()

    # -- fixtures --------------------------------------------------------------
    def info(self, fixturedef: pytest.FixtureDef[Any]) -> FixtureInfo:
        key = id(fixturedef)
        if key not in self.fixture_info:
            loc, code = probes.fixture_location(fixturedef.func, self.rootdir)
            user = code is not None and snapshot.project_file(code.co_filename, self.rootdir)
            info = FixtureInfo(loc, code, user, fixturedef.argname if user else None)
            if not user:
                wrapped = probes.wrapped_user_code(fixturedef.func, self.rootdir)
                if wrapped is not None:
                    name, wcode = wrapped
                    where = wcode.co_filename.replace(self.rootdir, "", 1)
                    info = FixtureInfo(f"{where}:{wcode.co_firstlineno}", wcode, False, name)
            self.fixture_info[key] = info
        return self.fixture_info[key]

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_fixture_setup(self, fixturedef: pytest.FixtureDef[Any],
                             request: pytest.FixtureRequest) -> Generator[None, object, object]:
        if not self.evidence:
            return (yield)
        name = fixturedef.argname
        blame = guard(lambda: self.info(fixturedef).blame, None)
        self.fixture_stack.append((name, blame))
        threads = probes.thread_names()
        error, value, failed = None, None, None
        try:
            value = yield
            return value
        except BaseException as exc:
            error, failed = f"{type(exc).__name__}: {str(exc)[:200]}", exc
            raise
        finally:
            res = guard(lambda: resources.resource(fixturedef.func, value, failed,
                                                   str(self.config.option.basetemp or "")),
                        None) if self.info(fixturedef).user else None
            if res:
                self.resources[name] = res
            self.fixture_stack.pop()
            new = {k: v for k, v in probes.thread_names().items() if k not in threads}
            owner = blame or self.context()["fixture"] or name
            for ident in new:
                self.thread_origin[ident] = owner
            self.first_setup[id(fixturedef)] = self.nodeid or "?"
            self.setups[name] = FixtureSetup(sorted(new.values()), error)

    def dead_event_loop(self, session: pytest.Session) -> list[str]:
        """Project fixtures named ``event_loop``: ordinary, unused fixtures since
        pytest-asyncio 1.0, which removed the one it used to override."""
        from importlib.metadata import version

        if int(version("pytest-asyncio").split(".")[0]) < 1:
            return []
        fm = session._fixturemanager
        found: dict[str, str] = {}
        for parent in dict.fromkeys(item.parent for item in session.items):
            if parent is None:
                continue
            for fd in fm.getfixturedefs("event_loop", parent) or ():
                loc, _, user, _ = self.info(fd)
                if user:
                    found[loc] = fd.scope
        return [f"{loc} ({scope}-scoped)" for loc, scope in found.items()]

    def fixtures_of(self, item: pytest.Item | None) -> list[FixtureEntry]:
        out: list[FixtureEntry] = []
        defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
        for name in getattr(item, "fixturenames", ()):
            fds = defs.get(name)
            if not fds:
                continue
            fd = fds[-1]
            loc, _, user, blame = self.info(fd)
            entry: FixtureEntry = {"name": blame or name, "scope": fd.scope,
                                   "fresh": name in self.setups}
            if not blame and name not in self.setups:
                continue  # pytest's and plugins' cached fixtures: noise
            if blame:  # the project's, or the project's function pytest's fixture calls
                entry["loc"], entry["user"] = loc, True
                oid = self.value_ids.get(name)
                if oid is not None and oid in self.state.ids:
                    entry["global"] = self.state.ids[oid]
            loop_scope = getattr(getattr(fd, "func", None), "_loop_scope", None)
            if loop_scope:
                entry["loop_scope"] = loop_scope
            if user and name in self.resources:
                entry["resource"] = self.resources[name]
            if name in self.setups:
                setup = self.setups[name]
                if setup.threads:
                    entry["threads"] = setup.threads
                if setup.error:
                    entry["error"] = setup.error
            else:
                entry["cached_from"] = self.first_setup.get(id(fd))
            out.append(entry)
        return out

    def code_index(self, item: pytest.Item) -> dict[types.CodeType, str]:
        index = {}
        defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
        for fds in defs.values():
            for fd in fds:
                info = self.info(fd)
                if info.code is not None and info.blame:
                    index[info.code] = info.blame
        return index

    # -- per test --------------------------------------------------------------
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, object, object]:
        """Only inside a test's protocol does a log start begin an execution (an xdist
        controller is told of its workers' starts, and runs none itself)."""
        self.running = item
        try:
            return (yield)
        finally:
            self.running = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self, nodeid: str) -> None:
        """One execution of the test begins (a test repeated in its process has several)."""
        item = self.running
        if item is None or nodeid != item.nodeid:
            return
        self.position += 1
        if self.position == 1:
            self.mark_started()
        base = base_nodeid(item)
        self.nodeid, self.phase, self.setups, self.value_ids = base, "setup", {}, {}
        self.resources = {}
        self.last_item = item
        item.user_properties[:] = [p for p in item.user_properties if p[0] not in OWN_PROPS]
        item.user_properties.extend(
            [(PROP_NODEID, base), (PROP_WORKER, self.worker), (PROP_POSITION, self.position)]
        )
        self.current = {"e": "end", "id": base, "nodeid": item.nodeid, "w": self.worker,
                        "pos": self.position, "outcome": "passed", "phase": None,
                        "dur": 0.0, "failures": []}
        self.write({"e": "start", "id": base, "w": self.worker, "pos": self.position,
                    "t": time.time()})
        if self.evidence:
            self.tap.take()
            self.stamps.created = []
            self.threads_before = probes.thread_names()
            # the previous test's closing snapshot is this one's opening one: nothing of
            # the project runs between two tests' protocols
            self.before = self.after or guard(self.state.snapshot, {})

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        self.last_item = item
        self.phase = "setup"

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> None:
        self.phase = "call"

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        self.phase = "teardown"

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]
                                  ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        rec = self.current
        if rec is None:
            return report
        if call.when in ("setup", "call"):
            funcargs = getattr(item, "funcargs", None) or {}
            self.value_ids = {k: id(v) for k, v in funcargs.items()
                              if not owners.shared(v)}
        rec["dur"] += report.duration
        if report.failed:
            excinfo = call.excinfo
            exc = excinfo.value if excinfo else None
            chain, text = probes.exception_chain(exc), cut(report.longreprtext)
            anatomy: Anatomy = {}
            if self.evidence:
                anatomy = guard(lambda: self.anatomy(item, exc), anatomy)
            failure: FailureRecord = {"phase": call.when, "chain": chain, "text": text,
                                      **anatomy}
            rec["failures"].append(failure)
            if call.when == "call":
                rec["outcome"], rec["phase"] = "failed", "call"
            elif rec["outcome"] != "failed":
                rec["outcome"], rec["phase"] = "error", call.when
        elif report.skipped and rec["outcome"] == "passed":
            rec["outcome"], rec["phase"] = "skipped", call.when
        return report

    def anatomy(self, item: pytest.Item, exc: BaseException | None) -> Anatomy:
        funcargs = getattr(item, "funcargs", {}) or {}
        defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
        users = {k for k, fds in defs.items() if fds and self.info(fds[-1]).user}
        values = {k: v for k, v in funcargs.items() if k in users}
        routes = {k: v for k, v in funcargs.items() if k not in users and k != "request"}
        test_func = getattr(item, "obj", None)
        test_code: types.CodeType | None = None
        try:
            if test_func is not None:
                test_code = inspect.unwrap(test_func).__code__
        except Exception:
            pass
        found = probes.anatomy(exc, values, self.code_index(item), test_code,
                               self.nodeid or "", self.rootdir, routes)
        no_tasks: list[TaskInfo] = []
        found["tasks_from_fixtures"] = guard(lambda: self.stamps.pending_tasks(self.rootdir),
                                             no_tasks)[:10]
        alive = probes.thread_names()
        found["threads_from_fixtures"] = sorted(
            {f"{name} (started by `{self.thread_origin[i]}`)" for i, name in alive.items()
             if i in self.thread_origin})
        read = guard(lambda: resources.read_from(exc, test_code, values), None) \
            if isinstance(exc, AssertionError) else None
        if read:
            found["read_from"] = read
        return found

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        rec = self.current
        if rec is None:
            return
        if self.evidence:
            guard(lambda: self.add_evidence(rec), None)
        self.write(rec)
        self.current = None
        self.phase = None

    def add_evidence(self, rec: EndRecord) -> None:
        after = self.after = guard(self.state.snapshot, {})
        rec["fixtures"] = guard(lambda: self.fixtures_of(self.last_item), [])
        if self.before and after:
            changed = snapshot.diff(self.before, after)
            if changed:
                rec["state"] = changed[:50]
        alive = probes.thread_names()
        left = [f"{name}" + (f" (started by `{self.thread_origin[i]}`)"
                             if i in self.thread_origin else "")
                for i, name in alive.items() if i not in self.threads_before]
        if left:
            rec["threads_left"] = left[:20]
        logs = self.tap.take()
        if logs:
            rec["asyncio_log"] = logs[:20]
        # only the fields that say something (a loop made outside any fixture has none)
        loops = [cast(LoopOrigin, {k: v for k, v in o.items() if v})
                 for o in self.stamps.created[:10]]
        if loops:
            rec["loops_created"] = loops


def process_facts(config: pytest.Config, worker: str) -> ProcessFacts:
    """This process's versions, and what the Perturber (if registered) applied."""
    perturber = config.pluginmanager.get_plugin("flakehunt-perturber")
    return {"worker": worker, "pid": os.getpid(), "python": sys.version.split()[0],
            "pytest": pytest.__version__,
            "order": getattr(perturber, "order", "declared"),
            "random_seed": getattr(perturber, "random_seed", None),
            "cpus": getattr(perturber, "cpus", None),
            "perturb": getattr(perturber, "applied", {})}
