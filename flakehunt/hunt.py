"""Orchestration: collect -> plan -> run -> parse -> verdicts -> classify."""

from __future__ import annotations

import os
import random
import resource
import shutil
import signal
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from flakehunt import merge, plan, profiles, verdicts
from flakehunt.collect import Collected, collect, tail
from flakehunt.errors import Interrupted, UsageError
from flakehunt.events import read_events
from flakehunt.junit import UnreadableXML, read_junit
from flakehunt.model import Failure, HuntResult, Outcome, Purpose, RunResult, RunSpec, TestResult
from flakehunt.runner import Done, Process, Suite, child_argv, child_env, execute, replay_command
from flakehunt.settings import HuntSettings, settings_dict, validate
from flakehunt.stopping import StopRule, runs_needed
from flakehunt.wire import PROFILE_APPLIED, TESTS_STARTED


class Progress(Protocol):
    def start(self, total: int, tests: int) -> None: ...
    def add_total(self, more: int) -> None: ...
    def run_done(self, run: RunResult, flaky: int) -> None: ...
    def note(self, text: str) -> None: ...


class QuietProgress:
    def start(self, total: int, tests: int) -> None: ...
    def add_total(self, more: int) -> None: ...
    def run_done(self, run: RunResult, flaky: int) -> None: ...
    def note(self, text: str) -> None: ...


@dataclass
class Job:
    spec: RunSpec
    rundir: Path
    cpu: int | None = None  # the CPU a pinning profile got
    process: Process | None = None
    key: str = ""  # whose step it is (see Hunt.stream)

    @property
    def profile(self) -> profiles.Profile:
        return profiles.get(self.spec.profile)

    @property
    def share(self) -> float:
        """CPUs the run keeps busy under its profile."""
        return self.profile.cpus_used(self.spec.workers)

    @property
    def slots(self) -> float:
        """CPUs the run keeps busy now: a deferred profile's run takes a whole one per
        process to start, until its tests start and the profile applies."""
        if self.profile.defers and (self.process is None or self.process.waiting):
            return max(1, self.spec.workers)
        return self.share


class Hunt:
    """A collected suite plus the means to run specs against it."""

    def __init__(self, settings: HuntSettings, collected: Collected, workdir: Path,
                 progress: Progress) -> None:
        self.settings = settings
        self.collected = collected
        self.workdir = workdir
        self.progress = progress
        self.suite = Suite(settings.python, collected.rootdir, collected.selection,
                           settings.pytest_args, settings.evidence)
        self.slots = settings.jobs or os.cpu_count() or 1
        self.next_index = 0
        self.warnings: list[str] = []
        self.all_runs: list[RunResult] = []
        needed = None if settings.shard else runs_needed(settings.min_rate)
        self.stop = StopRule(needed)  # sweep outcomes so far, and when they are enough
        self.early = 0  # planned sweep runs the stop rule made unnecessary
        self.t0 = time.monotonic()
        self.pinned: dict[int, int] = {}  # cpu -> running runs pinned to it
        self.in_flight = 0  # runs started and not yet done
        self.deadline: float | None = None  # time.monotonic() after which no run starts
        self.unstarted = 0  # runs dropped at the deadline

    def profile_args(self, spec: RunSpec, cpu: int | None = None) -> tuple[str, ...]:
        return profiles.get(spec.profile).child_args(cpu)

    def start(self, job: Job) -> Process:
        """Launch a job; a pinned run gets the CPU the fewest running runs are pinned to."""
        job.rundir.mkdir(parents=True, exist_ok=True)
        self.in_flight += 1
        if job.profile.pins:
            job.cpu = min(profiles.allowed_cpus(), key=lambda c: self.pinned.get(c, 0))
            self.pinned[job.cpu] = self.pinned.get(job.cpu, 0) + 1
        profile = job.profile
        argv = child_argv(self.suite, job.spec, job.rundir, self.profile_args(job.spec, job.cpu),
                          await_profile=profile.defers)
        deferred = {"attach_when": job.rundir / TESTS_STARTED,
                    "released": job.rundir / PROFILE_APPLIED} if profile.defers else {}
        tmpdir = job.rundir / "tmpdir"  # beside --basetemp, which pytest empties at start
        tmpdir.mkdir(exist_ok=True)
        job.process = Process(argv, child_env(job.spec, tmpdir=tmpdir), self.suite.rootdir,
                              job.rundir / "output.log",
                              attach=lambda pid: profile.attach(pid, job.spec.workers,
                                                                job.rundir),
                              **deferred)
        return job.process

    def release(self, job: Job) -> None:
        self.in_flight -= 1
        if job.cpu is not None:
            self.pinned[job.cpu] -= 1

    def new_specs(self, specs: Iterable[RunSpec]) -> list[RunSpec]:
        """Renumber specs so every run of the hunt has its own index and folder."""
        out = []
        for spec in specs:
            out.append(replace(spec, index=self.next_index))
            self.next_index += 1
        return out

    def command(self, spec: RunSpec) -> str:
        return replay_command(self.suite, spec, self.profile_args(spec), cwd=self.settings.cwd,
                              wrapper=profiles.get(spec.profile).wrapper(spec.workers))

    def note(self, text: str) -> None:
        self.progress.note(text)

    def sweep(self, specs: Iterable[RunSpec]) -> None:
        """Run the sweep's specs, at most one per slot. Under the stop rule only the
        runs the rule still needs are queued, in plan order (so the runs done are a
        balanced plan), topped up as results come in; the sweep ends once every test is
        settled (runs in flight finish: nothing measured is thrown away)."""
        specs = self.new_specs(specs)
        later = deque(Job(s, self.workdir / f"run-{s.index:04d}") for s in specs)
        jobs: deque[Job] = deque()
        nodeids = self.collected.nodeids

        def top_up() -> None:
            """Queue what the stop rule still needs beyond the runs in flight, in
            :meth:`placement` order; under a budget without a stop rule in plan order:
            the deadline cuts the end."""
            missing = self.stop.missing(nodeids)
            want = len(later) if missing is None else missing - self.in_flight - len(jobs)
            if want <= 0:
                return
            batch = [later.popleft() for _ in range(min(want, len(later)))]
            self.enqueue(jobs, batch, placed=missing is not None or self.deadline is None)

        def done(d: Done) -> None:
            run = self.finish(d)
            self.stop.add(run)
            if (jobs or later) and self.spent():
                self.unstarted += len(jobs) + len(later)
                jobs.clear()
                later.clear()
            elif (jobs or later) and self.stop.satisfied(nodeids):
                self.early += len(jobs) + len(later)
                jobs.clear()
                later.clear()
            else:
                top_up()
            self.progress.run_done(run, self.stop.flaky)

        top_up()
        self.execute(jobs, done)

    def finish(self, d: Done) -> RunResult:
        """A run that ended -> its parsed result, kept in ``all_runs``."""
        self.release(d.job)
        run = parse_run(d.job.spec, d.job.rundir, d.exit_code, d.status, d.duration,
                        self.collected.nodeids)
        run = replace(run, ended=time.monotonic() - self.t0, results=slim(run.results))
        if d.job.process is not None and d.job.process.applied:
            run = replace(run, profile_applied={**run.profile_applied,
                                                "parent": d.job.process.applied})
        for scratch in ("tmp", "tmpdir"):
            shutil.rmtree(d.job.rundir / scratch, ignore_errors=True)
        self.all_runs.append(run)
        return run

    def stream(self, steps: dict[str, list[RunSpec]],
               then: Callable[[str, list[RunResult]], list[RunSpec]]) -> None:
        """Run each key's specs; once all of a key's runs are done, ``then(key, runs)``
        (in spec order) gives its next specs. Keys advance independently: a key whose
        runs are done does not wait for the others'."""
        jobs: deque[Job] = deque()
        waiting: dict[str, tuple[int, list[RunResult]]] = {}

        def queue(key: str, specs: list[RunSpec]) -> None:
            specs = self.new_specs(specs)
            if not specs:
                return
            self.progress.add_total(len(specs))
            waiting[key] = (len(specs), [])
            self.enqueue(jobs, [Job(s, self.workdir / f"run-{s.index:04d}", key=key)
                                for s in specs])

        def done(d: Done) -> None:
            run = self.finish(d)
            key = d.job.key
            self.progress.run_done(run, self.stop.flaky)
            n, got = waiting[key]
            got.append(run)
            if len(got) == n:
                del waiting[key]
                queue(key, then(key, sorted(got, key=lambda r: r.spec.index)))

        for key, specs in steps.items():
            queue(key, specs)
        self.execute(jobs, done)

    def execute(self, jobs: deque[Job], done: Callable[[Done], None]) -> None:
        # throttled runs take a fraction of a slot; with --jobs given, never more runs
        # at once than that, else at most three per CPU (four quota-25 runs fill one)
        execute(jobs, self.slots, self, done, timeout=self.settings.run_timeout,
                max_running=self.settings.jobs or 3 * self.slots)

    def enqueue(self, jobs: deque[Job], batch: list[Job], placed: bool = True) -> None:
        """Add ``batch`` to the queue; ``placed``: the whole queue in :meth:`placement`
        order, arrival order within each class (a throttled run queued now goes ahead of
        plain ones queued earlier: started last, it would end the hunt late)."""
        jobs.extend(batch)
        if placed:
            ordered = sorted(jobs, key=self.placement)
            jobs.clear()
            jobs.extend(ordered)

    def placement(self, job: Job) -> tuple[bool, bool]:
        """Wide runs first (they need the machine to themselves), then throttled ones
        (long, a fraction of a CPU: they overlap the rest), then the others."""
        return (job.share < self.slots, job.share >= 1)

    def spent(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline


def parse_run(spec: RunSpec, rundir: Path, exit_code: int | None, status: str,
              duration: float, known: tuple[str, ...]) -> RunResult:
    """Everything one run left behind -> a RunResult. Nothing measured is dropped."""
    events = read_events(rundir)
    note = ""
    try:
        xml = read_junit(rundir / "junit.xml", known)
    except UnreadableXML as exc:
        xml, note = None, str(exc)
    results: list[TestResult] = []
    if xml is not None:
        for r in xml:
            rec = events.ended.get((r.worker, r.position or -1), {})
            results.append(enrich(r, rec))
    else:
        results = [from_event(rec) for rec in events.ended.values()]
    present = {(r.worker, r.position) for r in results}
    crashed_test = next((r.nodeid for r in results if r.outcome is Outcome.CRASHED), None)
    log = rundir / "output.log"
    output = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    for worker, rec in events.unfinished.items():
        if status == "interrupted":
            continue  # stopped by the user, not by the test: no verdict on it
        crashed_test = rec["id"]
        if (worker, rec["pos"]) in present:
            continue
        # xdist reports a worker crash as a testcase without our properties: place it
        same = next((i for i, r in enumerate(results) if r.nodeid == rec["id"]
                     and r.outcome is Outcome.CRASHED and r.position is None), None)
        if same is not None:
            results[same] = replace(results[same], worker=worker, position=rec["pos"])
            continue
        why = "timed out" if status == "timeout" else f"the run died{killed_by(exit_code)}"
        results.append(TestResult(rec["id"], Outcome.CRASHED, worker, rec["pos"],
                                  failure=Failure(None, f"{why} while this test was running",
                                                  crash_text(output, spec, rec["id"]))))
    if status == "ok":
        if xml is None:
            status = "crashed" if events.unfinished or (exit_code or 0) < 0 else "unreadable"
        elif crashed_test is not None:
            status = "crashed"  # an xdist worker died; pytest itself wrote the XML
        elif exit_code not in (0, 1, 5):
            status = "error"
    if status in ("crashed", "timeout", "error"):
        note = (crash_text(output, spec, crashed_test, lines=3) if crashed_test
                else tail(output, 5)) + killed_by(exit_code)
    applied = {w: s.get("perturb") or {} for w, s in events.sessions.items()}
    return RunResult(spec, status, exit_code, duration, tuple(results), str(rundir),
                     crashed_test, note, applied)


#: what a passing test's record keeps: the state it left changed (polluter evidence)
KEPT_WHEN_PASSED = ("state",)


def slim(results: tuple[TestResult, ...]) -> tuple[TestResult, ...]:
    """Keep the full evidence of failures only: memory then grows with the failures,
    not with runs x tests (a passing test's fixture timeline is never read again)."""
    return tuple(r if r.outcome.bad or not r.evidence else replace(
        r, evidence={k: r.evidence[k] for k in KEPT_WHEN_PASSED if k in r.evidence})
        for r in results)


def killed_by(exit_code: int | None) -> str:
    if exit_code is not None and exit_code < 0:
        try:
            return f" (killed by {signal.Signals(-exit_code).name})"
        except ValueError:
            return f" (killed by signal {-exit_code})"
    return ""


def crash_text(output: str, spec: RunSpec, nodeid: str | None, lines: int = 30) -> str:
    """What a crash left in the log: faulthandler's 'Fatal Python error' line and the
    frames of the crashing test's own file first, then the end of the log."""
    keep: list[str] = []
    test_file = (nodeid or "").split("::")[0]
    for line in output.splitlines():
        if line.startswith(("Fatal Python error", "Current thread", "Thread 0x")) or (
                test_file and test_file in line and line.lstrip().startswith("File")):
            keep.append(line)
    if keep:
        return "\n".join(keep[:lines])
    return tail(output, lines)


def failure_from_record(rec: dict, fallback: Failure | None) -> Failure | None:
    fails = rec.get("failures") or []
    if not fails:
        return fallback
    main = next((f for f in fails if f.get("phase") == "call"), fails[0])
    chain = tuple(main.get("chain") or ())
    message = fallback.message if fallback else (
        f"{chain[0]['type']}: {chain[0]['message']}" if chain else "")
    return Failure(main.get("phase"), message, main.get("text") or "", chain)


def enrich(result: TestResult, rec: dict) -> TestResult:
    """Add the plugin's record; its id is exact (the XML's has been escaped)."""
    if not rec:
        return result
    failure = failure_from_record(rec, result.failure) if result.outcome.bad else None
    return replace(result, nodeid=rec.get("id", result.nodeid), failure=failure,
                   evidence=compact(rec))


def from_event(rec: dict) -> TestResult:
    outcome = Outcome(rec.get("outcome", "passed"))
    failure = failure_from_record(rec, None) if outcome.bad else None
    return TestResult(rec["id"], outcome, rec.get("w", "main"), rec.get("pos"),
                      rec.get("dur", 0.0), failure, compact(rec))


def compact(rec: dict) -> dict:
    """What classification needs of a record; the failure text is kept in Failure."""
    out = {k: v for k, v in rec.items() if k not in ("e", "failures", "id", "w", "pos", "dur")}
    anatomy = [{k: v for k, v in f.items() if k not in ("text", "chain")}
               for f in rec.get("failures") or ()]
    if anatomy:
        out["failure_anatomy"] = anatomy
    return out


def hunt(settings: HuntSettings, progress: Progress | None = None) -> HuntResult:
    progress = progress or QuietProgress()
    validate(settings)
    started = time.monotonic()
    cpu0 = own_cpu()
    seed = settings.seed if settings.seed is not None else random.SystemRandom().randrange(10**6)
    own_workdir = settings.workdir is None
    if own_workdir:
        workdir = Path(tempfile.mkdtemp(prefix="flakehunt-"))
    else:
        workdir = settings.workdir.resolve()  # runs happen in the rootdir, not here
        try:
            workdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot use --workdir {settings.workdir}: "
                             f"{exc.strerror or exc}") from None
    try:
        collected = collect(settings.python, settings.selection, settings.pytest_args,
                            settings.cwd, workdir / "collect", timeout=settings.run_timeout)
        collected_at = time.monotonic()
        h = Hunt(settings, collected, workdir, progress)
        specs = plan.sweep(plan.PlanSettings(settings.runs, seed, settings.workers,
                                             usable_profiles(settings.profiles, h.warnings),
                                             settings.dist))
        specs = merge.shard_specs(specs, settings.shard)
        if settings.budget is not None:
            h.deadline = started + settings.budget
        progress.start(len(specs), len(collected.nodeids))
        interrupted: int | None = None
        try:
            h.sweep(specs)
        except (KeyboardInterrupt, Interrupted) as exc:
            interrupted = getattr(exc, "code", 130)
        runs = sorted(h.all_runs, key=lambda r: r.spec.index)
        sweep_runs = [r for r in runs if r.spec.purpose is Purpose.SWEEP]
        findings = verdicts.findings(sweep_runs, collected.nodeids)
        for run in runs:
            if run.status != "ok":
                h.warnings.append(f"run {run.spec.index} {run.status}"
                                  + (f" while running {run.crashed_test}" if run.crashed_test
                                     else "") + (f": {run.note.splitlines()[-1]}" if run.note
                                                 else ""))
        coverage = {"planned_runs": len(specs)}
        if h.early:
            coverage["stopped_early"] = {
                "runs_not_needed": h.early, "min_rate": settings.min_rate,
                "confidence": 0.95, "same_outcome_runs": h.stop.needed}
            progress.note(
                f"sweep stopped after {len(sweep_runs)} of {len(specs)} runs: every test is "
                f"flaky or gave the same outcome {h.stop.needed} times (rules out a "
                f"{settings.min_rate:.0%} rate at 95% confidence; --min-rate 0 runs them all)")
        if h.unstarted:
            coverage["budget_unstarted_runs"] = h.unstarted
            h.warnings.append(
                f"budget of {settings.budget:g}s spent: {len(sweep_runs)} of {len(specs)} "
                "planned sweep runs done; verdicts rest on those runs"
                + ("; follow-up runs skipped, flaky tests not classified"
                   if settings.classify else ""))
        h.deadline = None  # follow-ups, once started, finish: a partial bisection misleads
        swept_at = time.monotonic()
        if settings.classify and interrupted is None and not h.unstarted:
            from flakehunt import classify

            try:
                before = h.next_index
                context = classify.Context(
                    dead_event_loop=tuple(collected.meta.get("dead_event_loop") or ()),
                    slowdowns={name: p.slowdown for name, p in profiles.PROFILES.items()})
                findings = classify.classify(findings, runs, h, seed, context)
                if h.next_index > before:
                    progress.note(f"classified with {h.next_index - before} follow-up runs")
            except (KeyboardInterrupt, Interrupted) as exc:
                interrupted = getattr(exc, "code", 130)
        return HuntResult(
            rootdir=str(collected.rootdir), selection=collected.selection, seed=seed,
            runs=tuple(sorted(h.all_runs, key=lambda r: r.spec.index)),
            findings=tuple(findings),
            settings={**settings_dict(settings, seed), **coverage}, warnings=tuple(h.warnings),
            interrupted=interrupted or 0,
            timing={"wall": round(time.monotonic() - started, 3),
                    "collect": round(collected_at - started, 3),
                    "sweep": round(swept_at - collected_at, 3),
                    "follow_ups": round(time.monotonic() - swept_at, 3),
                    "flakehunt_cpu": round(own_cpu() - cpu0, 3),
                    "flakehunt_peak_rss_mb": round(peak_rss_mb(), 1)},
        )
    finally:
        profiles.remove_made()
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)


def own_cpu() -> float:
    """CPU seconds of this process alone (not its children): the orchestration cost."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """This process's peak resident memory (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def usable_profiles(names: tuple[str, ...], warnings: list[str]) -> tuple[str, ...]:
    usable = []
    for name in names:
        avail = profiles.get(name).availability()
        if avail.available:
            usable.append(name)
        else:
            warnings.append(f"profile {name} unavailable here ({avail.why}); its runs use none")
    return tuple(usable) or ("none",)
