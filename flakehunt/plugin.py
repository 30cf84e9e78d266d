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

PROP_NODEID = "flakehunt_nodeid"
PROP_WORKER = "flakehunt_worker"
PROP_POSITION = "flakehunt_position"
TEXT_LIMIT = 8000


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("flakehunt", "flakehunt child runs (set by flakehunt)")
    group.addoption("--flakehunt-out", metavar="DIR", help="enable the plugin; write events here")
    group.addoption("--flakehunt-order", default=None, metavar="ORDER",
                    help="declared, reverse or hash:SEED")
    group.addoption("--flakehunt-random-seed", type=int, default=None, metavar="N",
                    help="re-seed random before each test from N and the test id")
    group.addoption("--flakehunt-cpus", default=None, metavar="LIST",
                    help="pin this run (and its xdist workers) to these CPUs, e.g. 0")


def pytest_configure(config: pytest.Config) -> None:
    """Register the hook objects only for the options given; otherwise do nothing."""
    opt = config.getoption
    if opt("flakehunt_order", None) or opt("flakehunt_random_seed", None) is not None \
            or opt("flakehunt_cpus", None):
        try:
            config.pluginmanager.register(Perturber(config), "flakehunt-perturber")
        except ValueError as exc:
            raise pytest.UsageError(f"flakehunt: {exc}") from None
    if opt("flakehunt_out", None):
        config.pluginmanager.register(Recorder(config, Path(opt("flakehunt_out"))),
                                      "flakehunt-recorder")


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


def exception_chain(exc: BaseException | None, limit: int = 12) -> list[dict]:
    """The exception, its causes/contexts and group members, outermost first."""
    chain: list[dict] = []
    seen: set[int] = set()
    todo = [exc]
    while todo and len(chain) < limit:
        e = todo.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        chain.append({"type": type(e).__qualname__, "module": type(e).__module__,
                      "message": str(e)[:1000]})
        todo.extend(getattr(e, "exceptions", ()) or ())
        todo.append(e.__cause__ or e.__context__)
    return chain


def cut(text: str, limit: int = TEXT_LIMIT) -> str:
    if len(text) <= limit:
        return text
    head = limit // 5
    return f"{text[:head]}\n[... {len(text) - limit} characters cut ...]\n{text[-(limit - head):]}"


class Perturber:
    """Order, seeds and CPU pinning: what makes a run replayable and perturbed."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.order = config.getoption("flakehunt_order") or "declared"
        ordering.parse_order(self.order)
        self.random_seed = config.getoption("flakehunt_random_seed")
        self.cpus = self.pin_cpus()

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


class Recorder:
    """Streams test events to files; one per pytest process (controller or worker)."""

    def __init__(self, config: pytest.Config, out: Path) -> None:
        self.config = config
        self.out = out
        self.worker = worker_id()
        self.position = 0
        self.current: dict | None = None
        out.mkdir(parents=True, exist_ok=True)
        self.events = open(out / f"events-{self.worker}.jsonl", "a", encoding="utf-8")
        perturber = config.pluginmanager.get_plugin("flakehunt-perturber")
        self.meta = {"worker": self.worker, "pid": os.getpid(), "python": sys.version.split()[0],
                     "pytest": pytest.__version__,
                     "order": getattr(perturber, "order", "declared"),
                     "random_seed": getattr(perturber, "random_seed", None),
                     "cpus": getattr(perturber, "cpus", None)}

    def write(self, record: dict) -> None:
        self.events.write(json.dumps(record, default=str) + "\n")
        self.events.flush()

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.worker != "main":
            return
        data = {"rootdir": str(session.config.rootpath),
                "nodeids": [item.nodeid for item in session.items], **self.meta}
        tmp = self.out / "collected.json.tmp"
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(self.out / "collected.json")

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.write({"e": "session", **self.meta})

    def pytest_unconfigure(self) -> None:
        self.write({"e": "finish", "t": time.time()})
        self.events.close()

    # -- per test --------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> None:
        self.position += 1
        base = base_nodeid(item)
        item.user_properties.extend(
            [(PROP_NODEID, base), (PROP_WORKER, self.worker), (PROP_POSITION, self.position)]
        )
        self.current = {"e": "end", "id": base, "nodeid": item.nodeid, "w": self.worker,
                        "pos": self.position, "outcome": "passed", "phase": None,
                        "dur": 0.0, "failures": []}
        self.write({"e": "start", "id": base, "w": self.worker, "pos": self.position,
                    "t": time.time()})

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        report = yield
        rec = self.current
        if rec is None:
            return report
        rec["dur"] += report.duration
        if report.failed:
            excinfo = call.excinfo
            rec["failures"].append({
                "phase": call.when,
                "chain": exception_chain(excinfo.value if excinfo else None),
                "text": cut(report.longreprtext),
            })
            if call.when == "call":
                rec["outcome"], rec["phase"] = "failed", "call"
            elif rec["outcome"] != "failed":
                rec["outcome"], rec["phase"] = "error", call.when
        elif report.skipped and rec["outcome"] == "passed":
            rec["outcome"], rec["phase"] = "skipped", call.when
        return report

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        if self.current is not None:
            self.write(self.current)
            self.current = None
