"""The child-side pytest plugin, loaded as ``-p flakehunt`` (and by its pytest11 entry
point): the hooks pytest calls at configure time, and the Perturber.

Inert unless one of its options is given: merely installed it only adds them.
``--flakehunt-out=DIR`` registers the Recorder (flakehunt.recorder), which tags every
report and streams the test's events and evidence into ``DIR``; the order, seed and
perturbation options register the :class:`Perturber`; ``--flakehunt-split`` on an
xdist controller replays a recorded split (flakehunt.split); ``--flakehunt-count=N``
runs every test N times in a row (flakehunt.repeat). Imports here stay cheap:
this module loads in every pytest process where flakehunt is installed; the recorder,
its probes (asyncio and friends) and the perturbations load only when asked for.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from flakehunt import ordering
from flakehunt.testid import base_nodeid, worker_id
from flakehunt.wire import (
    MAIN_WORKER,
    OPT_AWAIT,
    OPT_BURNERS,
    OPT_COUNT,
    OPT_CPUS,
    OPT_EVIDENCE,
    OPT_JITTER,
    OPT_ORDER,
    OPT_OUT,
    OPT_RANDOM_SEED,
    OPT_RESET,
    OPT_SPLIT,
    OPT_SWITCH_INTERVAL,
)

if TYPE_CHECKING:
    import subprocess

    from flakehunt.perturb import TimerJitter

#: the options that register the Perturber
PERTURB_OPTIONS = (OPT_ORDER, OPT_RANDOM_SEED, OPT_CPUS, OPT_BURNERS, OPT_JITTER,
                   OPT_SWITCH_INTERVAL)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("flakehunt", "flakehunt child runs (set by flakehunt)")
    group.addoption(OPT_OUT, metavar="DIR", help="enable the plugin; write events here")
    group.addoption(OPT_ORDER, default=None, metavar="ORDER",
                    help="declared, reverse or hash:SEED")
    group.addoption(OPT_RANDOM_SEED, type=int, default=None, metavar="N",
                    help="re-seed random before each test from N and the test id")
    group.addoption(OPT_EVIDENCE, default="on", choices=("on", "off"),
                    help="with --flakehunt-out: gather fixture/loop/state evidence (default on)")
    group.addoption(OPT_CPUS, default=None, metavar="LIST",
                    help="pin this run (and its xdist workers) to these CPUs, e.g. 0")
    group.addoption(OPT_BURNERS, type=int, default=None, metavar="N",
                    help="run N CPU-burner processes beside the tests")
    group.addoption(OPT_JITTER, type=float, default=None, metavar="MS",
                    help="delay asyncio timers by up to MS ms, seeded per test")
    group.addoption(OPT_SWITCH_INTERVAL, type=float, default=None, metavar="S",
                    help="sys.setswitchinterval(S) for the run")
    group.addoption(OPT_SPLIT, default=None, metavar="JSON",
                    help='replay an xdist split: {"gw0": [test ids...], ...}')
    group.addoption(OPT_AWAIT, action="store_true", default=False,
                    help="with --flakehunt-out: before the first test, wait until flakehunt "
                         "has applied the run's profile (a CPU quota)")
    group.addoption(OPT_COUNT, type=int, default=None, metavar="N",
                    help="run every test N times in a row, each time with fresh "
                         "function-scoped fixtures; works for unittest tests too")
    group.addoption(OPT_RESET, default=None, metavar="JSON",
                    help="put one state item back to its value before the first test, "
                         "right before one test (flakehunt's culprit check)")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """In flakehunt's collecting child: what pytest and its plugins imported before the
    suite's conftests (a warm parent may preload those even when the suite configures its
    libraries: flakehunt.warm)."""
    known = early_config.known_args_namespace
    if getattr(known, "collectonly", False) and getattr(known, "flakehunt_out", None):
        from flakehunt import warm

        warm.snapshot()


def pytest_configure(config: pytest.Config) -> None:
    """Register the hook objects only for the options given; otherwise do nothing."""
    opt = config.getoption
    if any(opt(name, None) is not None for name in PERTURB_OPTIONS):
        try:
            config.pluginmanager.register(Perturber(config), "flakehunt-perturber")
        except ValueError as exc:
            raise pytest.UsageError(f"flakehunt: {exc}") from None
    split = opt(OPT_SPLIT, None)
    if split and config.pluginmanager.hasplugin("xdist") and worker_id() == MAIN_WORKER:
        from flakehunt.split import SplitHooks, parse_split

        try:
            config.pluginmanager.register(SplitHooks(parse_split(split)), "flakehunt-split")
        except ValueError as exc:
            raise pytest.UsageError(f"flakehunt: {exc}") from None
    count = opt(OPT_COUNT, None)
    if count is not None and count > 1:
        from flakehunt.repeat import Repeater

        config.pluginmanager.register(Repeater(count), "flakehunt-repeater")
    reset = opt(OPT_RESET, None)
    if reset:
        from flakehunt.reset import Resetter, parse_reset

        try:
            config.pluginmanager.register(Resetter(parse_reset(reset)), "flakehunt-reset")
        except ValueError as exc:
            raise pytest.UsageError(f"flakehunt: {exc}") from None
    if opt(OPT_OUT, None):
        from flakehunt import tracebacks, watch
        from flakehunt.recorder import Recorder  # the probes, asyncio...: only when enabled

        tracebacks.share_parses()  # the same reports, each source parsed once a run

        config.pluginmanager.register(Recorder(config, Path(opt(OPT_OUT))),
                                      "flakehunt-recorder")
        config.pluginmanager.register(watch.Plugin(config, opt(OPT_OUT)), "flakehunt-watch")


class Perturber:
    """Order, seeds, and the child-side perturbations: CPU pinning, burner
    processes, asyncio timer jitter, thread-switch interval. Everything it
    changes it undoes at unconfigure."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.order: str = config.getoption(OPT_ORDER) or "declared"
        ordering.parse_order(self.order)
        self.random_seed: int | None = config.getoption(OPT_RANDOM_SEED)
        self.cpus = self.pin_cpus()
        #: what was applied, for the session record
        self.applied: dict[str, Any] = {"cpus": self.cpus}
        self.burners: list[subprocess.Popen[bytes]] = []
        self.jitter: TimerJitter | None = None
        self.old_switch: float | None = None
        interval = config.getoption(OPT_SWITCH_INTERVAL)
        if interval is not None:
            self.old_switch = sys.getswitchinterval()
            sys.setswitchinterval(interval)
            self.applied["switch_interval"] = sys.getswitchinterval()
        jitter_ms = config.getoption(OPT_JITTER)
        if jitter_ms:
            from flakehunt.perturb import TimerJitter

            self.jitter = TimerJitter(jitter_ms / 1000.0)
            self.jitter.install()
            self.applied["jitter_ms"] = jitter_ms
        burners = config.getoption(OPT_BURNERS)
        if burners and worker_id() == MAIN_WORKER:
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

    def pin_cpus(self) -> dict[str, Any]:
        cpus = self.config.getoption(OPT_CPUS)
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
