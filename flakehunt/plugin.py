"""The child-side pytest plugin, loaded as ``-p flakehunt``.

Inert unless ``--flakehunt-out=DIR`` is given: merely installed it only adds
its options. Enabled, it orders the tests, re-seeds ``random``, tags every
report with the test's id, worker and position (``user_properties``, which
travel through xdist into the JUnit XML), and streams one JSON line per test
event into ``DIR/events-<worker>.jsonl`` so a crashed run loses nothing
already measured. Imports here stay cheap: this module loads in every pytest
process where flakehunt is installed.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

import pytest

from flakehunt import ordering
from flakehunt.wire import (
    AWAIT_LIMIT,
    PROFILE_APPLIED,
    PROP_NODEID,
    PROP_POSITION,
    PROP_WORKER,
    TESTS_STARTED,
    TEXT_LIMIT,
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("flakehunt", "flakehunt child runs (set by flakehunt)")
    group.addoption("--flakehunt-out", metavar="DIR", help="enable the plugin; write events here")
    group.addoption("--flakehunt-order", default=None, metavar="ORDER",
                    help="declared, reverse or hash:SEED")
    group.addoption("--flakehunt-random-seed", type=int, default=None, metavar="N",
                    help="re-seed random before each test from N and the test id")
    group.addoption("--flakehunt-evidence", default="on", choices=("on", "off"),
                    help="with --flakehunt-out: gather fixture/loop/state evidence (default on)")
    group.addoption("--flakehunt-cpus", default=None, metavar="LIST",
                    help="pin this run (and its xdist workers) to these CPUs, e.g. 0")
    group.addoption("--flakehunt-burners", type=int, default=None, metavar="N",
                    help="run N CPU-burner processes beside the tests")
    group.addoption("--flakehunt-jitter", type=float, default=None, metavar="MS",
                    help="delay asyncio timers by up to MS ms, seeded per test")
    group.addoption("--flakehunt-switch-interval", type=float, default=None, metavar="S",
                    help="sys.setswitchinterval(S) for the run")
    group.addoption("--flakehunt-split", default=None, metavar="JSON",
                    help='replay an xdist split: {"gw0": [test ids...], ...}')
    group.addoption("--flakehunt-await", action="store_true", default=False,
                    help="with --flakehunt-out: before the first test, wait until flakehunt "
                         "has applied the run's profile (a CPU quota)")


def pytest_configure(config: pytest.Config) -> None:
    """Register the hook objects only for the options given; otherwise do nothing."""
    opt = config.getoption
    if any(opt(name, None) is not None for name in PERTURB_OPTIONS):
        try:
            config.pluginmanager.register(Perturber(config), "flakehunt-perturber")
        except ValueError as exc:
            raise pytest.UsageError(f"flakehunt: {exc}") from None
    split = opt("flakehunt_split", None)
    if split and config.pluginmanager.hasplugin("xdist") and worker_id() == "main":
        from flakehunt.split import SplitHooks, parse_split

        try:
            config.pluginmanager.register(SplitHooks(parse_split(split)), "flakehunt-split")
        except ValueError as exc:
            raise pytest.UsageError(f"flakehunt: {exc}") from None
    if opt("flakehunt_out", None):
        config.pluginmanager.register(Recorder(config, Path(opt("flakehunt_out"))),
                                      "flakehunt-recorder")


PERTURB_OPTIONS = ("flakehunt_order", "flakehunt_random_seed", "flakehunt_cpus",
                   "flakehunt_burners", "flakehunt_jitter", "flakehunt_switch_interval")


def worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def base_nodeid(item: pytest.Item) -> str:
    """The test id without pytest-repeat's ``[i-n]`` part."""
    nodeid = item.nodeid
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "__pytest_repeat_step_number" not in params:
        return nodeid
    count = item.config.getoption("count", None)
    part = f"{params['__pytest_repeat_step_number'] + 1}-{count}"
    for old, new in ((f"[{part}]", ""), (f"[{part}-", "["), (f"-{part}]", "]"), (f"-{part}-", "-")):
        if old in nodeid:
            head, _, tail = nodeid.rpartition(old)
            return head + new + tail
    return nodeid


def walk_exceptions(exc: BaseException | None, limit: int = 12):
    """The exception, its causes/contexts and group members, outermost first, once each."""
    seen: set[int] = set()
    todo = [exc]
    while todo and len(seen) < limit:
        e = todo.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend(getattr(e, "exceptions", ()) or ())
        todo.append(e.__cause__ or e.__context__)


def exception_chain(exc: BaseException | None, limit: int = 12) -> list[dict]:
    return [{"type": type(e).__qualname__, "module": type(e).__module__,
             "message": str(e)[:1000]} for e in walk_exceptions(exc, limit)]


def cut(text: str, limit: int = TEXT_LIMIT) -> str:
    if len(text) <= limit:
        return text
    head = limit // 5
    return f"{text[:head]}\n[... {len(text) - limit} characters cut ...]\n{text[-(limit - head):]}"


class Perturber:
    """Order, seeds, and the child-side perturbations: CPU pinning, burner
    processes, asyncio timer jitter, thread-switch interval. Everything it
    changes it undoes at unconfigure."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.order = config.getoption("flakehunt_order") or "declared"
        ordering.parse_order(self.order)
        self.random_seed = config.getoption("flakehunt_random_seed")
        self.cpus = self.pin_cpus()
        self.applied: dict = {"cpus": self.cpus}
        self.burners: list = []
        self.jitter = None
        self.old_switch = None
        interval = config.getoption("flakehunt_switch_interval")
        if interval is not None:
            self.old_switch = sys.getswitchinterval()
            sys.setswitchinterval(interval)
            self.applied["switch_interval"] = sys.getswitchinterval()
        jitter_ms = config.getoption("flakehunt_jitter")
        if jitter_ms:
            from flakehunt.perturb import TimerJitter

            self.jitter = TimerJitter(jitter_ms / 1000.0)
            self.jitter.install()
            self.applied["jitter_ms"] = jitter_ms
        burners = config.getoption("flakehunt_burners")
        if burners and worker_id() == "main":
            from flakehunt.perturb import start_burners

            self.burners = start_burners(burners)
            self.applied["burners"] = len(self.burners)
            self.applied["burner_pids"] = [p.pid for p in self.burners]

    def pytest_unconfigure(self) -> None:
        if self.old_switch is not None:
            sys.setswitchinterval(self.old_switch)
        if self.jitter is not None:
            self.jitter.uninstall()
        for proc in self.burners:
            proc.kill()
            proc.wait()

    def pin_cpus(self) -> dict:
        cpus = self.config.getoption("flakehunt_cpus")
        if not cpus:
            return {"requested": None}
        wanted = {int(c) for c in cpus.split(",")}
        if not hasattr(os, "sched_setaffinity"):
            return {"requested": sorted(wanted), "applied": False, "why": "no sched_setaffinity"}
        try:
            os.sched_setaffinity(0, wanted)
        except OSError as exc:
            return {"requested": sorted(wanted), "applied": False, "why": str(exc)}
        return {"requested": sorted(wanted), "applied": True,
                "mechanism": "sched_setaffinity"}

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        items[:] = ordering.apply_order(self.order, items, nodeid=lambda i: i.nodeid)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if self.random_seed is not None:
            random.seed(f"{self.random_seed}::{base_nodeid(item)}")
        if self.jitter is not None:  # per test: replayable with or without xdist
            self.jitter.reseed(f"{self.random_seed}::{base_nodeid(item)}::jitter")


class Recorder:
    """Streams test events and evidence to files; one per pytest process."""

    def __init__(self, config: pytest.Config, out: Path) -> None:
        from flakehunt import probes  # asyncio and friends: only when enabled

        self.probes = probes
        self.config = config
        self.out = out
        self.rootdir = str(config.rootpath) + os.sep
        self.worker = worker_id()
        self.position = 0
        self.current: dict | None = None
        self.nodeid: str | None = None
        self.phase: str | None = None
        self.fixture_stack: list[str] = []
        self.setups: dict[str, dict] = {}
        self.first_setup: dict[int, str] = {}  # id(FixtureDef) -> test that set it up
        self.thread_origin: dict[int, str] = {}  # thread ident -> fixture that started it
        self.fixture_info: dict[int, tuple] = {}  # id(FixtureDef) -> (loc, code, user)
        self.before: dict = {}
        self.after: dict = {}  # the state when the last test's protocol ended
        self.threads_before: dict[int, str] = {}
        out.mkdir(parents=True, exist_ok=True)
        self.events = open(out / f"events-{self.worker}.jsonl", "a", encoding="utf-8")
        perturber = config.pluginmanager.get_plugin("flakehunt-perturber")
        self.meta = {"worker": self.worker, "pid": os.getpid(), "python": sys.version.split()[0],
                     "pytest": pytest.__version__,
                     "order": getattr(perturber, "order", "declared"),
                     "random_seed": getattr(perturber, "random_seed", None),
                     "cpus": getattr(perturber, "cpus", None),
                     "perturb": getattr(perturber, "applied", {})}
        self.evidence = config.getoption("flakehunt_evidence") != "off"
        self.state = probes.StateTracker(config.rootpath)
        self.stamps = probes.LoopStamps(self.context)
        self.tap = probes.AsyncioLogTap()
        if self.evidence:
            self.stamps.install()
            logging_logger("asyncio").addHandler(self.tap)

    def context(self) -> dict:
        import threading

        return {"test": self.nodeid, "phase": self.phase,
                "fixture": self.fixture_stack[-1] if self.fixture_stack else None,
                "thread": threading.current_thread().name}

    def write(self, record: dict) -> None:
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
        if not self.config.getoption("flakehunt_await"):
            return
        deadline = time.monotonic() + AWAIT_LIMIT
        while not (self.out / PROFILE_APPLIED).exists() and time.monotonic() < deadline:
            time.sleep(0.002)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.worker != "main":
            return
        data = {"rootdir": str(session.config.rootpath),
                "nodeids": list(dict.fromkeys(base_nodeid(i) for i in session.items)),
                **self.meta}
        if session.config.option.collectonly and self.evidence:
            data["dead_event_loop"] = self.guard(lambda: self.dead_event_loop(session), [])
        tmp = self.out / "collected.json.tmp"
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(self.out / "collected.json")

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.write({"e": "session", **self.meta})

    def pytest_unconfigure(self) -> None:
        self.stamps.uninstall()
        logging_logger("asyncio").removeHandler(self.tap)
        self.write({"e": "finish", "t": time.time()})
        self.events.close()

    # -- fixtures --------------------------------------------------------------
    def info(self, fixturedef) -> tuple:
        key = id(fixturedef)
        if key not in self.fixture_info:
            loc, code = self.probes.fixture_location(fixturedef.func, self.rootdir)
            user = code is not None and self.probes.project_file(code.co_filename, self.rootdir)
            self.fixture_info[key] = (loc, code, user)
        return self.fixture_info[key]

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_fixture_setup(self, fixturedef, request):
        if not self.evidence:
            return (yield)
        name = fixturedef.argname
        self.fixture_stack.append(name)
        threads = self.probes.thread_names()
        error = None
        try:
            return (yield)
        except BaseException as exc:
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
            raise
        finally:
            self.fixture_stack.pop()
            new = {k: v for k, v in self.probes.thread_names().items() if k not in threads}
            for ident in new:
                self.thread_origin[ident] = name
            self.first_setup[id(fixturedef)] = self.nodeid or "?"
            self.setups[name] = {"threads": sorted(new.values()), "error": error}

    def dead_event_loop(self, session: pytest.Session) -> list[str]:
        """Project fixtures named ``event_loop``: ordinary, unused fixtures since
        pytest-asyncio 1.0, which removed the one it used to override."""
        from importlib.metadata import version

        if int(version("pytest-asyncio").split(".")[0]) < 1:
            return []
        fm = session._fixturemanager
        found: dict[str, str] = {}
        for parent in dict.fromkeys(item.parent for item in session.items):
            for fd in fm.getfixturedefs("event_loop", parent) or ():
                loc, _, user = self.info(fd)
                if user:
                    found[loc] = fd.scope
        return [f"{loc} ({scope}-scoped)" for loc, scope in found.items()]

    def fixtures_of(self, item: pytest.Item) -> list[dict]:
        out = []
        defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
        for name in getattr(item, "fixturenames", ()):
            fds = defs.get(name)
            if not fds:
                continue
            fd = fds[-1]
            loc, code, user = self.info(fd)
            entry = {"name": name, "scope": fd.scope, "fresh": name in self.setups}
            if not user and name not in self.setups:
                continue  # pytest's and plugins' cached fixtures: noise
            if user:
                entry.update(loc=loc, user=True)
                oid = self.value_ids.get(name)
                if oid is not None and oid in self.state.ids:
                    entry["global"] = self.state.ids[oid]
            loop_scope = getattr(getattr(fd, "func", None), "_loop_scope", None)
            if loop_scope:
                entry["loop_scope"] = loop_scope
            if name in self.setups:
                entry.update({k: v for k, v in self.setups[name].items() if v})
            else:
                entry["cached_from"] = self.first_setup.get(id(fd))
            out.append(entry)
        return out

    def code_index(self, item: pytest.Item) -> dict:
        index = {}
        defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
        for name, fds in defs.items():
            for fd in fds:
                code = self.info(fd)[1]
                if code is not None:
                    index[code] = name
        return index

    # -- per test --------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> None:
        self.position += 1
        if self.position == 1:
            self.mark_started()
        base = base_nodeid(item)
        self.nodeid, self.phase, self.setups, self.value_ids = base, "setup", {}, {}
        self.last_item = item
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
            self.threads_before = self.probes.thread_names()
            # the previous test's closing snapshot is this one's opening one: nothing of
            # the project runs between two tests' protocols
            self.before = self.after or self.guard(self.state.snapshot, {})

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> None:
        self.phase = "call"

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        self.phase = "teardown"

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        report = yield
        rec = self.current
        if rec is None:
            return report
        if call.when in ("setup", "call"):
            funcargs = getattr(item, "funcargs", None) or {}
            self.value_ids = {k: id(v) for k, v in funcargs.items() if v is not None}
        rec["dur"] += report.duration
        if report.failed:
            excinfo = call.excinfo
            exc = excinfo.value if excinfo else None
            failure = {"phase": call.when, "chain": exception_chain(exc),
                       "text": cut(report.longreprtext)}
            if self.evidence:
                failure.update(self.guard(lambda: self.anatomy(item, exc), {}))
            rec["failures"].append(failure)
            if call.when == "call":
                rec["outcome"], rec["phase"] = "failed", "call"
            elif rec["outcome"] != "failed":
                rec["outcome"], rec["phase"] = "error", call.when
        elif report.skipped and rec["outcome"] == "passed":
            rec["outcome"], rec["phase"] = "skipped", call.when
        return report

    def anatomy(self, item: pytest.Item, exc) -> dict:
        values = {k: v for k, v in getattr(item, "funcargs", {}).items() if k != "request"}
        test_func = getattr(item, "obj", None)
        try:
            test_code = inspect_unwrap(test_func).__code__
        except Exception:
            test_code = None
        found = self.probes.anatomy(exc, values, self.code_index(item), test_code,
                                    self.nodeid or "", self.rootdir)
        found["tasks_from_fixtures"] = self.probes_tasks()
        alive = self.probes.thread_names()
        found["threads_from_fixtures"] = sorted(
            {f"{name} (started by `{self.thread_origin[i]}`)" for i, name in alive.items()
             if i in self.thread_origin})
        return found

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        rec = self.current
        if rec is None:
            return
        if self.evidence:
            self.guard(lambda: self.add_evidence(rec), None)
        self.write(rec)
        self.current = None
        self.phase = None

    def add_evidence(self, rec: dict) -> None:
        after = self.after = self.guard(self.state.snapshot, {})
        rec["fixtures"] = self.guard(lambda: self.fixtures_of(self.last_item), [])
        if self.before and after:
            changed = self.state.diff(self.before, after)
            if changed:
                rec["state"] = changed[:50]
        alive = self.probes.thread_names()
        left = [f"{name}" + (f" (started by `{self.thread_origin[i]}`)"
                             if i in self.thread_origin else "")
                for i, name in alive.items() if i not in self.threads_before]
        if left:
            rec["threads_left"] = left[:20]
        logs = self.tap.take()
        if logs:
            rec["asyncio_log"] = logs[:20]
        loops = [{k: v for k, v in o.items() if v} for o in self.stamps.created[:10]]
        if loops:
            rec["loops_created"] = loops

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        self.last_item = item
        self.phase = "setup"

    def probes_tasks(self) -> list[dict]:
        return self.guard(lambda: self.stamps.pending_tasks(self.rootdir), [])[:10]

    @staticmethod
    def guard(fn, default):
        try:
            return fn()
        except Exception:
            return default


def logging_logger(name: str):
    import logging

    return logging.getLogger(name)


def inspect_unwrap(func):
    import inspect

    return inspect.unwrap(func)
