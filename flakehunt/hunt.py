"""The hunt, top to bottom: collect -> plan -> sweep -> pair screen -> verdicts -> follow-ups
-> findings.

:func:`hunt` reads as that list, each step a small function below it. The runs are
the scheduler's (:mod:`flakehunt.scheduler`: slots, pinning, the stop rule, the
budget), a run's folder is read by :mod:`flakehunt.parse`; the decisions are the
pure core's (:mod:`flakehunt.plan`, :mod:`flakehunt.verdicts`,
:mod:`flakehunt.classify`), handed the profiles' facts as data.
"""

from __future__ import annotations

import os
import random
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from flakehunt import (
    childpath,
    classify,
    clusters,
    merge,
    parse,
    plan,
    profiles,
    screen,
    verdicts,
)
from flakehunt.collect import Collected, collect
from flakehunt.command import Suite, child_env
from flakehunt.errors import Interrupted, SuiteError, UsageError
from flakehunt.isolation import Isolation
from flakehunt.model import Finding, HuntResult, Purpose, RunResult, RunSpec, RunStatus
from flakehunt.pool import Pool, memo_file
from flakehunt.scheduler import (
    ChildLauncher,
    Limits,
    Progress,
    QuietProgress,
    Scheduler,
    SweepReport,
    interrupt_code,
)
from flakehunt.settings import HuntSettings, settings_dict, validate
from flakehunt.stats import CONFIDENCE, percent_up, rules_out
from flakehunt.stopping import runs_needed

__all__ = ["HuntSettings", "Interrupted", "Progress", "QuietProgress", "hunt",
           "usable_profiles", "validate"]


def hunt(settings: HuntSettings, progress: Progress | None = None) -> HuntResult:
    """Collect the suite, run the planned sweep, give every test its verdict, follow
    the flaky ones up and say why each one is flaky."""
    progress = progress or QuietProgress()
    validate(settings)
    watch = Stopwatch()
    seed = settings.seed if settings.seed is not None else random.SystemRandom().randrange(10**6)
    needed = None if settings.shard else runs_needed(settings.min_rate)
    with workspace(settings.workdir) as workdir, ExitStack() as stack:
        child_path = child_side()
        collected = collect(settings.python, settings.selection, settings.pytest_args,
                            settings.cwd, workdir / "collect", timeout=settings.run_timeout,
                            child_path=child_path)
        watch.lap("collect")
        warnings: list[str] = []
        specs = plan_sweep(settings, seed, warnings)
        runs: list[RunResult] = []  # every finished run, sweep and follow-ups
        launcher = make_launcher(settings, collected, workdir, seed, child_path)
        stack.callback(launcher.close)
        scheduler = make_scheduler(settings, collected, workdir, needed, progress, runs.append,
                                   launcher)
        progress.start(len(specs), len(collected.nodeids))
        report = scheduler.sweep(specs, deadline=watch.deadline(settings.budget))
        swept = [r for r in in_order(runs) if r.spec.purpose is Purpose.SWEEP]
        coverage, more = sweep_coverage(settings, len(specs), len(swept), report, needed)
        swept_findings = verdicts.findings(swept, collected.nodeids)
        coverage["detection"] = verdicts.detection(swept_findings)
        warnings += more
        interrupted = report.interrupted or pair_screen(settings, swept, scheduler, seed,
                                                        report, coverage, warnings)
        counted = [r for r in in_order(runs) if r.spec.purpose.counts]
        findings = (swept_findings if same_runs(counted, swept)
                    else verdicts.findings(counted, collected.nodeids))
        warnings += run_warnings(in_order(runs))
        watch.lap("sweep")
        if settings.classify and interrupted is None and not report.unstarted:
            findings, interrupted = follow_ups(findings, runs, scheduler, seed, collected,
                                               warnings)
        isolated = scheduler.isolation or Isolation()
        return HuntResult(
            rootdir=str(collected.rootdir), selection=collected.selection, seed=seed,
            runs=tuple(in_order(runs)), findings=tuple(findings),
            settings={**settings_dict(settings, seed), **coverage,
                      "isolation": isolated.summary(), "start": start_summary(runs, launcher),
                      "dead_event_loop": list(collected.meta.get("dead_event_loop") or [])},
            warnings=tuple(warnings + isolated.warnings()),
            interrupted=interrupted or 0, timing=watch.timing(),
            clusters=tuple(clusters.group(findings)))


# -- the steps --------------------------------------------------------------------------------
@contextmanager
def workspace(workdir: Path | None) -> Iterator[Path]:
    """The hunt's folder: ``--workdir``, else a temporary one removed at the end. What
    the profiles made (cgroups) is removed at the end either way."""
    own = workdir is None
    path = Path(tempfile.mkdtemp(prefix="flakehunt-")) if workdir is None else open_workdir(
        workdir)
    try:
        yield path
    finally:
        profiles.remove_made()
        if own:
            shutil.rmtree(path, ignore_errors=True)


def open_workdir(workdir: Path) -> Path:
    path = workdir.resolve()  # runs happen in the rootdir, not here
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot use --workdir {workdir}: {exc.strerror or exc}") from None
    return path


def plan_sweep(settings: HuntSettings, seed: int, warnings: list[str]) -> list[RunSpec]:
    """The sweep's specs: the plan for ``seed`` over the profiles usable here (each one
    missing is a warning), this shard's part of it."""
    usable = usable_profiles(settings.profiles, warnings)
    specs = plan.sweep(plan.PlanSettings(settings.runs, seed, settings.workers, usable,
                                         settings.dist, weights=profile_weights()))
    return merge.shard_specs(specs, settings.shard)


def usable_profiles(names: tuple[str, ...], warnings: list[str]) -> tuple[str, ...]:
    usable = []
    for name in names:
        avail = profiles.get(name).availability()
        if avail.available:
            usable.append(name)
        else:
            warnings.append(f"profile {name} unavailable here ({avail.why}); its runs use none")
    return tuple(usable) or ("none",)


def profile_weights() -> dict[str, int]:
    """Each profile's runs per turn of the sweep's rotation (:attr:`plan.PlanSettings.weights`)."""
    return {name: p.weight for name, p in profiles.PROFILES.items()}


def child_side() -> Path:
    """The folder the children load flakehunt's plugin from (flakehunt.childpath)."""
    try:
        return childpath.ensure()
    except OSError as exc:
        raise SuiteError(str(exc)) from None


def make_launcher(settings: HuntSettings, collected: Collected, workdir: Path, seed: int,
                  child_path: Path | None = None) -> ChildLauncher:
    """What starts the runs: warm parents that fork them (flakehunt.pool), unless asked
    for fresh processes or this platform cannot fork."""
    suite = Suite(settings.python, collected.rootdir, collected.selection,
                  settings.pytest_args, settings.evidence, child_path)
    if settings.start == "fresh":
        return ChildLauncher(suite, settings.cwd, fresh="--start fresh")
    if not hasattr(os, "fork"):
        return ChildLauncher(suite, settings.cwd, fresh="no fork on this platform")
    preload = collected.meta.get("preload") or {}
    env = child_env(RunSpec(index=-1), tmpdir=workdir / "warm", child_path=child_path)
    modules = list(preload.get("modules") or [])
    pool = Pool(settings.python, collected.rootdir, env, workdir / "warm", seed, modules,
                memo=memo_file(child_path.parent, settings.python, modules)
                if child_path else None)
    if preload.get("limited"):
        pool.notes.append(f"preloading only what pytest's plugins import: {preload['limited']}")
    return ChildLauncher(suite, settings.cwd, pool=pool)


def start_summary(runs: Iterable[RunResult], launcher: ChildLauncher) -> dict[str, Any]:
    """How the runs started (``settings.start`` in the JSON): warm or fresh, why fresh,
    the hash seeds met, the CPU seconds of the runs whose warm parent measured them (by
    purpose), the pool's own facts."""
    kinds: dict[str, int] = {}
    why: dict[str, int] = {}
    workers: dict[str, Any] = {"warm": 0, "fresh": 0, "fresh_why": {}}
    seeds = set()
    cpu: dict[str, float] = {}
    for run in runs:
        start = run.profile_applied.get("start") or {}
        kind = start.get("kind", "fresh")
        kinds[kind] = kinds.get(kind, 0) + 1
        if isinstance(start.get("cpu"), (int, float)):
            purpose = str(run.spec.purpose)
            cpu[purpose] = round(cpu.get(purpose, 0.0) + start["cpu"], 3)
        if start.get("why"):
            why[start["why"]] = why.get(start["why"], 0) + 1
        for key, value in (start.get("workers") or {}).items():
            if key == "fresh_why":
                for reason, n in value.items():
                    workers[key][reason] = workers[key].get(reason, 0) + n
            else:
                workers[key] += value
        seeds.add(run.spec.hash_seed if run.spec.hash_seed is not None
                  else run.spec.random_seed)
    pool = launcher.pool.summary() if launcher.pool is not None else {}
    return {"asked": "fresh" if launcher.pool is None else "warm", "warm": kinds.get("warm", 0),
            "fresh": kinds.get("fresh", 0), "fresh_why": why, "hash_seeds": len(seeds),
            **({"xdist_workers": workers} if workers["warm"] or workers["fresh"] else {}),
            **({"runs_cpu": cpu} if cpu else {}),
            **({"pool": pool} if pool else {})}


def make_scheduler(settings: HuntSettings, collected: Collected, workdir: Path,
                   needed: int | None, progress: Progress,
                   on_run: Callable[[RunResult], None],
                   launcher: ChildLauncher) -> Scheduler:
    """The scheduler that runs child pytest processes of the collected suite."""
    return Scheduler(launcher,
                     partial(parse.read_run, known=collected.nodeids), workdir,
                     collected.nodeids, Limits.for_jobs(settings.jobs, settings.run_timeout),
                     needed, progress=progress, on_run=on_run, isolation=Isolation())


def in_order(runs: Iterable[RunResult]) -> list[RunResult]:
    return sorted(runs, key=lambda r: r.spec.index)


def same_runs(a: list[RunResult], b: list[RunResult]) -> bool:
    """The very same runs (no screen run came after the sweep): their verdicts are known."""
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


def run_warnings(runs: Iterable[RunResult]) -> list[str]:
    """One warning per run that did not end on its own: how, and where."""
    return [f"run {run.spec.index} {run.status}"
            + (f" while running {run.crashed_test}" if run.crashed_test else "")
            + (f": {run.note.splitlines()[-1]}" if run.note else "")
            for run in runs if run.status is not RunStatus.OK]


def sweep_coverage(settings: HuntSettings, planned: int, done: int, report: SweepReport,
                   needed: int | None) -> tuple[dict[str, Any], list[str]]:
    """What the sweep covered (for the report's settings) and its warnings; a sweep the
    opt-in stop rule ended early says so, with the detection power it gave up."""
    coverage: dict[str, Any] = {"planned_runs": planned}
    warnings = []
    if report.not_needed:
        would = rules_out(planned) or 1.0
        coverage["stopped_early"] = {
            "runs_not_needed": report.not_needed, "min_rate": settings.min_rate,
            "confidence": CONFIDENCE, "same_outcome_runs": needed,
            "planned_would_rule_out": round(would, 4)}
        warnings.append(
            f"--min-rate {settings.min_rate:g} stopped the sweep after {done} of {planned} "
            f"runs: every test was flaky or gave the same outcome {needed} times, which "
            f"rules out only a {percent_up(settings.min_rate)} failure rate; the {planned} "
            f"planned runs would have ruled out {percent_up(would)} (--min-rate 0 runs them "
            "all)")
    if report.unstarted:
        coverage["budget_unstarted_runs"] = report.unstarted
        warnings.append(
            f"budget of {settings.budget:g}s spent: {done} of {planned} "
            "planned sweep runs done; verdicts rest on those runs"
            + ("; follow-up runs skipped, flaky tests not classified"
               if settings.classify else ""))
    return coverage, warnings


def pair_screen(settings: HuntSettings, swept: list[RunResult], scheduler: Scheduler,
                seed: int, report: SweepReport, coverage: dict[str, Any],
                warnings: list[str]) -> int | None:
    """After a whole sweep, the pair screen's runs (:mod:`flakehunt.screen`): the tests
    that changed one state item, in orders putting each pair side by side. Returns the
    exit code of an interrupt that cut it short."""
    if settings.shard or report.unstarted:
        return None
    planned = screen.plan(swept, seed)
    coverage["screen"] = {"runs": len(planned.specs), "groups": planned.items,
                          "groups_too_big": planned.too_many, "rows_left_out": planned.left_out}
    if planned.left_out:
        warnings.append(f"pair screen: {planned.left_out} rows left out past its cap of "
                        f"{screen.MAX_RUNS} runs")
    if not planned.specs:
        return None
    try:
        scheduler.stream({"screen": list(planned.specs)}, lambda key, runs: [])
    except (KeyboardInterrupt, Interrupted) as exc:
        return interrupt_code(exc)
    scheduler.note(f"pair screen: {len(planned.specs)} runs of the tests that change "
                   f"the same state ({planned.items} groups)")
    return None


def follow_ups(findings: list[Finding], runs: list[RunResult], scheduler: Scheduler,
               seed: int, collected: Collected,
               warnings: list[str]) -> tuple[list[Finding], int | None]:
    """The flaky tests' follow-up runs and their classification, and the exit code of
    an interrupt that cut them short (the findings are then the verdicts alone).
    ``runs``: the runs finished so far; the scheduler adds the follow-ups to it;
    ``warnings`` gets the follow-up runs that did not run their test."""
    before = len(runs)
    context = classify.Context(
        dead_event_loop=tuple(collected.meta.get("dead_event_loop") or ()),
        slowdowns={name: p.slowdown for name, p in profiles.PROFILES.items()})
    try:
        classified = classify.classify(findings, in_order(runs), scheduler, seed, context,
                                       warnings)
    except (KeyboardInterrupt, Interrupted) as exc:
        return findings, interrupt_code(exc)
    if len(runs) > before:
        scheduler.note(f"classified with {len(runs) - before} follow-up runs")
    return classified, None


# -- time and memory --------------------------------------------------------------------------
class Stopwatch:
    """Where the hunt's time goes: wall seconds per step, and this process's own CPU."""

    def __init__(self) -> None:
        self.started = self.last = time.monotonic()
        self.cpu0 = own_cpu()
        self.laps: dict[str, float] = {}

    def deadline(self, budget: float | None) -> float | None:
        """When a budget of ``budget`` seconds from the start is spent."""
        return None if budget is None else self.started + budget

    def lap(self, step: str) -> None:
        now = time.monotonic()
        self.laps[step] = round(now - self.last, 3)
        self.last = now

    def timing(self) -> dict[str, float]:
        self.lap("follow_ups")
        return {"wall": round(self.last - self.started, 3), **self.laps,
                "flakehunt_cpu": round(own_cpu() - self.cpu0, 3),
                "flakehunt_peak_rss_mb": round(peak_rss_mb(), 1)}


def own_cpu() -> float:
    """CPU seconds of this process alone (not its children): the orchestration cost."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """This process's peak resident memory (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)
