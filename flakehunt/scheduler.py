"""Runs specs on this machine: slots, CPU pinning, queue placement, the stop rule
and the budget.

The :class:`Scheduler` turns run specs into jobs, numbers them (every run of a hunt
has its own index and folder), queues them so the machine stays busy and each
run's profile holds, and hands each finished run, read by the injected ``read``
function, to the ``on_run`` callback and to :class:`Progress`. Processes are
started by a :class:`RunLauncher` (:class:`ChildLauncher` for real child pytest
runs), so the scheduler runs with a fake launcher and a fake clock in tests.

Two ways to run specs:

- :meth:`Scheduler.sweep`: the planned runs of the whole selection, only as many
  as the stop rule still needs, none started after the budget's deadline;
- :meth:`Scheduler.stream`: the follow-ups, one chain of steps per key, each key
  advancing as soon as its own runs are done (the ``Runs`` protocol of
  :mod:`flakehunt.classify`, with :meth:`Scheduler.command` and :meth:`Scheduler.note`).
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from flakehunt import profiles
from flakehunt.command import Suite, child_argv, child_env, pytest_argv, replay_command
from flakehunt.errors import Interrupted
from flakehunt.isolation import Isolation, netns_argv, read_shared
from flakehunt.model import Purpose, RunResult, RunSpec, RunStatus
from flakehunt.pool import Pool, WarmChild
from flakehunt.runner import Child, Done, Handle, Process, execute
from flakehunt.stopping import StopRule
from flakehunt.wire import PROFILE_APPLIED, TESTS_STARTED, WORKERS, workers


class Progress(Protocol):
    """Who is told how the hunt goes (the console's progress bar)."""

    def start(self, total: int, tests: int) -> None: ...
    def add_total(self, more: int) -> None: ...
    def run_done(self, run: RunResult, flaky: int) -> None: ...
    def note(self, text: str) -> None: ...


class QuietProgress:
    def start(self, total: int, tests: int) -> None: ...
    def add_total(self, more: int) -> None: ...
    def run_done(self, run: RunResult, flaky: int) -> None: ...
    def note(self, text: str) -> None: ...


class RunHandle(Handle, Protocol):
    """A started run, as the scheduler sees it."""

    @property
    def waiting(self) -> bool:
        """A deferred profile not applied yet (the run's tests have not started)."""
        ...

    @property
    def applied(self) -> dict[str, Any]:
        """What the profile's parent-side perturbation did (empty: none)."""
        ...


@dataclass
class Job:
    """One run on its way: queued, running, then done."""

    spec: RunSpec
    rundir: Path
    cpu: int | None = None  # the CPU a pinning profile got
    process: RunHandle | None = None
    key: str = ""  # whose step it is (see Scheduler.stream)
    isolation: str = ""  # how it ran beside the others (Isolation.label)
    rank: int = 0  # its place in the queue (see Scheduler.enqueue and Scheduler.admit)
    machine: float = math.inf  # the CPUs the runs may keep busy (Limits.slots)

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

    @property
    def needs(self) -> float:
        """CPUs that must be free for the run to start: its :attr:`slots`, but a
        throttled run as wide as the machine needs all CPUs but one. Its start-up
        (xdist's workers collecting) is not throttled and is not what its quota
        measures; waiting for the whole machine while narrow runs backfilled, such runs
        started only once every narrow run had ended and ran one after another at the
        sweep's end (a 2,000-test suite: its last 30 s). So its start-up may share a
        CPU with the runs beside it for that second or so."""
        if self.throttled and self.profile.defers and self.process is None:
            return min(self.slots, max(1.0, self.machine - 1))
        return self.slots

    @property
    def width(self) -> float:
        """CPUs the run needs to start: a deferred profile's start-up is not throttled."""
        return max(1, self.spec.workers) if self.profile.defers else self.share

    @property
    def throttled(self) -> bool:
        """Held to less than a CPU per process by its profile (a quota)."""
        return self.profile.cpus_used(1) < 1

    @property
    def held(self) -> float:
        """CPUs of a throttled run the kernel holds to its quota now (0: not yet, or
        not throttled)."""
        return self.slots if self.throttled and self.slots < self.width else 0.0


class RunLauncher(Protocol):
    """How runs are started, and how a user would start one by hand."""

    def start(self, job: Job) -> RunHandle: ...
    def command(self, spec: RunSpec) -> str: ...


class ChildLauncher:
    """Starts each job as a child pytest process in its own folder: forked by a warm
    parent of ``pool`` where it can be (flakehunt.pool), else a fresh process, and says
    which (``Child.start``; ``fresh``: why every run starts fresh)."""

    def __init__(self, suite: Suite, cwd: Path, pool: Pool | None = None,
                 fresh: str = "") -> None:
        self.suite = suite
        self.cwd = cwd  # where the user is: replay commands are written from there
        self.pool = pool
        self.fresh = fresh

    def start(self, job: Job) -> Child:
        job.rundir.mkdir(parents=True, exist_ok=True)
        profile = job.profile
        parent, why = None, self.fresh
        if self.pool is not None:
            parent, why = self.pool.pick(job.spec.hash_seed, fresh_only=(
                "a network namespace needs a fresh process" if job.isolation == "netns" else ""),
                ages=job.spec.purpose is Purpose.SWEEP)
        if parent is not None:
            job.spec = replace(job.spec, hash_seed=parent.hash_seed)
        argv = child_argv(self.suite, job.spec, job.rundir, profile.child_args(job.cpu),
                          await_profile=profile.defers)
        if job.isolation == "netns":  # plumbing: not part of the replay command
            argv = [*netns_argv(), *argv]
        deferred = {"attach_when": job.rundir / TESTS_STARTED,
                    "released": job.rundir / PROFILE_APPLIED} if profile.defers else {}
        tmpdir = job.rundir / "tmpdir"  # beside --basetemp, which pytest empties at start
        tmpdir.mkdir(exist_ok=True)
        env = child_env(job.spec, tmpdir=tmpdir, child_path=self.suite.child_path)
        log = job.rundir / "output.log"

        def attach(pid: int) -> profiles.Attached | None:
            return profile.attach(pid, job.spec.workers, job.rundir)

        if parent is not None and self.pool is not None:
            request = {"args": argv[len(pytest_argv(self.suite.python)):],
                       "cwd": str(self.suite.rootdir), "env": env, "log": str(log)}
            return WarmChild(self.pool, parent, request, argv, attach=attach, **deferred)
        proc = Process(argv, env, self.suite.rootdir, log, attach=attach, **deferred)
        proc.start = {"kind": "fresh", **({"why": why} if why else {})}
        return proc

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()

    def command(self, spec: RunSpec) -> str:
        profile = profiles.get(spec.profile)
        return replay_command(self.suite, spec, profile.child_args(), cwd=self.cwd,
                              wrapper=profile.wrapper(spec.workers))


#: a finished run's folder -> its result: (spec, rundir, exit code, status, seconds)
ReadRun = Callable[[RunSpec, Path, int | None, RunStatus, float], RunResult]


@dataclass(frozen=True)
class Limits:
    """How much of the machine the runs may take."""

    slots: float  # CPUs the runs keep busy at once, at most
    max_running: int  # runs at once, at most
    timeout: float | None = None  # a run still going after this many seconds is killed
    #: share of ``slots`` that runs held to a quota may overlap (see Scheduler.capacity)
    overlap: float = 0.25
    #: places beyond ``max_running`` that only runs held to a quota may take (see
    #: Scheduler.max_running)
    held_places: int = 0

    @classmethod
    def for_jobs(cls, jobs: int, timeout: float | None = None) -> Limits:
        """``--jobs``: that many CPUs and never more runs at once; 0: one slot per CPU,
        at most three runs per CPU, and two more per CPU for runs held to a quota (a
        throttled run takes a fraction of a slot: four quota-25 runs fill one)."""
        slots = jobs or os.cpu_count() or 1
        return cls(slots, jobs or 3 * slots, timeout, held_places=0 if jobs else 2 * slots)


@dataclass
class SweepReport:
    """How a sweep ended, beyond its runs (those went to ``on_run``)."""

    #: planned runs the stop rule made unnecessary
    not_needed: int = 0
    #: planned runs never started: the budget was spent
    unstarted: int = 0
    #: the exit code of the interrupt that cut the sweep short (130, 143), else None
    interrupted: int | None = None


def interrupt_code(exc: BaseException) -> int:
    """The exit code an interrupt asks for: SIGTERM's, or Ctrl-C's 130."""
    return exc.code if isinstance(exc, Interrupted) else 130


class Scheduler:
    """Runs specs with at most ``limits`` of the machine; see the module's docstring."""

    def __init__(self, launcher: RunLauncher, read: ReadRun, workdir: Path,
                 nodeids: tuple[str, ...], limits: Limits, needed: int | None,
                 progress: Progress | None = None,
                 on_run: Callable[[RunResult], None] = lambda run: None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 cpus: Callable[[], list[int]] = profiles.allowed_cpus,
                 isolation: Isolation | None = None,
                 memory_to_spare: Callable[[], bool] = profiles.memory_to_spare) -> None:
        """``needed``: the stop rule's same-outcome runs (None: run every planned run);
        ``cpus``: the CPUs a pinned run may get; ``isolation``: how runs are kept apart
        (None: they simply run side by side); ``memory_to_spare``: whether runs held to a
        quota may take places beyond the limit (:meth:`max_running`)."""
        self.launcher = launcher
        self.read = read
        self.workdir = workdir
        self.nodeids = nodeids
        self.limits = limits
        self.progress = progress or QuietProgress()
        self.on_run = on_run
        self.clock, self.sleep, self.cpus = clock, sleep, cpus
        self.memory_to_spare = memory_to_spare
        self.memory_read = (-math.inf, False)  # (when, memory to spare then)
        self.stop = StopRule(needed)  # sweep outcomes so far, and when they are enough
        self.t0 = clock()
        self.next_index = 0
        self.next_rank = 0
        self.pinned: dict[int, int] = {}  # cpu -> running runs pinned to it
        self.running: list[Job] = []  # runs started and not yet done
        self.isolation = isolation

    @property
    def in_flight(self) -> int:
        """Runs started and not yet done."""
        return len(self.running)

    # -- the Runs protocol (flakehunt.classify) ------------------------------------------
    def command(self, spec: RunSpec) -> str:
        return self.launcher.command(spec)

    def note(self, text: str) -> None:
        self.progress.note(text)

    def stream(self, steps: dict[str, list[RunSpec]],
               then: Callable[[str, list[RunResult]], list[RunSpec]]) -> None:
        """Run each key's specs; once all of a key's runs are done, ``then(key, runs)``
        (in spec order) gives its next specs. Keys advance independently: a key whose
        runs are done does not wait for the others'."""
        jobs: deque[Job] = deque()
        waiting: dict[str, tuple[int, list[RunResult]]] = {}

        def queue(key: str, specs: list[RunSpec]) -> None:
            numbered = self.number(specs)
            if not numbered:
                return
            self.progress.add_total(len(numbered))
            waiting[key] = (len(numbered), [])
            self.enqueue(jobs, [self.job(s, key) for s in numbered])

        def done(d: Done[Job]) -> None:
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

    # -- the sweep -----------------------------------------------------------------------
    def sweep(self, specs: Iterable[RunSpec], deadline: float | None = None) -> SweepReport:
        """Run the sweep's specs, at most one per slot; none starts after ``deadline``
        (a ``clock()`` time). Under the stop rule only the runs the rule still needs are
        queued, in plan order (so the runs done are a balanced plan), topped up as
        results come in; the sweep ends once every test is settled (runs in flight
        finish: nothing measured is thrown away). An interrupt ends it too: the runs
        in flight are stopped and reported, and the report says so."""
        later = deque(self.job(s) for s in self.number(specs))
        jobs: deque[Job] = deque()
        report = SweepReport()

        def top_up() -> None:
            """Queue what the stop rule still needs beyond the runs in flight, in
            :meth:`placement` order; under a budget without a stop rule in plan order:
            the deadline cuts the end."""
            missing = self.stop.missing(self.nodeids)
            want = len(later) if missing is None else missing - self.in_flight - len(jobs)
            if want <= 0:
                return
            batch = [later.popleft() for _ in range(min(want, len(later)))]
            self.enqueue(jobs, batch, placed=missing is not None or deadline is None)

        def done(d: Done[Job]) -> None:
            run = self.finish(d)
            self.stop.add(run)
            if (jobs or later) and deadline is not None and self.clock() >= deadline:
                report.unstarted += len(jobs) + len(later)
                jobs.clear()
                later.clear()
            elif (jobs or later) and self.stop.satisfied(self.nodeids):
                report.not_needed += len(jobs) + len(later)
                jobs.clear()
                later.clear()
            else:
                top_up()
            self.progress.run_done(run, self.stop.flaky)

        top_up()
        self.pilot_first(jobs)
        try:
            self.execute(jobs, done)
        except (KeyboardInterrupt, Interrupted) as exc:
            report.interrupted = interrupt_code(exc)
        return report

    # -- the jobs --------------------------------------------------------------------------
    def number(self, specs: Iterable[RunSpec]) -> list[RunSpec]:
        """Renumber specs so every run of the hunt has its own index and folder."""
        out = []
        for spec in specs:
            out.append(replace(spec, index=self.next_index))
            self.next_index += 1
        return out

    def job(self, spec: RunSpec, key: str = "") -> Job:
        return Job(spec, self.workdir / f"run-{spec.index:04d}", key=key,
                   machine=self.limits.slots)

    def enqueue(self, jobs: deque[Job], batch: list[Job], placed: bool = True) -> None:
        """Add ``batch`` to the queue; ``placed``: the whole queue in :meth:`placement`
        order, arrival order within each class (a throttled run queued now goes ahead of
        plain ones queued earlier: started last, it would end the hunt late)."""
        for job in batch:
            job.rank = self.next_rank
            self.next_rank += 1
        jobs.extend(batch)
        if placed:
            ordered = sorted(jobs, key=lambda j: (self.placement(j), j.rank))
            jobs.clear()
            jobs.extend(ordered)
            for rank, job in enumerate(ordered, start=self.next_rank):
                job.rank = rank
            self.next_rank += len(ordered)

    def placement(self, job: Job) -> tuple[bool, bool, float]:
        """Wide runs first (they need the machine to start), the throttled among them
        first (the longest: their throttled part overlaps the rest, see
        :meth:`capacity`), then narrow throttled ones (long, a fraction of a CPU), then
        the others; among the throttled, the tighter quota first: it takes longest
        (a quota-10 run of a 2,000-test suite about 24 s, a quota-25 one about 8 s),
        and started last it would end the sweep alone."""
        return (job.width < self.limits.slots, not job.throttled, job.profile.cpus_used(1))

    def pilot_first(self, jobs: deque[Job]) -> None:
        """The isolation's pilot runs alone (flakehunt.isolation): the first narrow run
        that is not throttled goes first, the shortest to wait for."""
        if self.isolation is None or self.isolation.mode != "pilot" or not jobs:
            return
        short = next((j for j in jobs if j.width <= 1 and not j.throttled), None)
        if short is not None:
            jobs.remove(short)
            jobs.appendleft(short)
            short.rank = min(j.rank for j in jobs) - 1

    def capacity(self, running: list[Job]) -> float:
        """CPUs the runs may keep busy beside ``running``: the slots, plus what runs
        held to a quota take, up to ``overlap`` of the slots. A quota is a ceiling far
        below a CPU: with demand at most ``overlap`` above the CPUs, every process
        still gets far more than its quota, so the throttled run's condition holds,
        the runs beside it keep most of a CPU each, and no CPU idles beside a
        throttled run while a run wider than what is left waits (a throttled xdist
        run's start-up, say)."""
        held = sum(j.held for j in running)
        return self.limits.slots + min(held, self.limits.overlap * self.limits.slots)

    def admit(self, jobs: deque[Job], running: list[Job]) -> float:
        """:meth:`capacity` beside ``running``, the queue ordered first: while runs held
        to a quota take every place but the CPUs' worth (``max_running`` - slots), the
        queued runs that keep a CPU busy go ahead of the throttled ones, else in
        :attr:`Job.rank` order. Throttled runs piling up to ``max_running`` would keep
        only a fraction of the CPUs busy while the others wait."""
        room = self.max_running() - math.ceil(self.limits.slots)
        crowded = room > 0 and sum(j.throttled for j in running) >= room
        ordered = sorted(jobs, key=lambda j: (crowded and j.throttled, j.rank))
        if any(a is not b for a, b in zip(ordered, jobs, strict=True)):
            jobs.clear()
            jobs.extend(ordered)
        return self.capacity(running)

    def execute(self, jobs: deque[Job], done: Callable[[Done[Job]], None]) -> None:
        execute(jobs, partial(self.admit, jobs), self, done, timeout=self.limits.timeout,
                clock=self.clock, sleep=self.sleep, max_running=self.max_running)

    def max_running(self) -> int:
        """Runs at once, at most: one while the isolation policy says so; else the
        limit, plus a place for each run held to its quota now, up to ``held_places``,
        while the machine has memory to spare. A run held to quota-10 keeps a tenth
        of a CPU busy for ten times as long: counted as a whole place, such runs filled
        the places and bounded the sweep, not the CPUs (a 424-test suite: 4 of 6 places
        held by throttled runs for most of its sweep)."""
        if self.isolation is not None and self.isolation.one_at_a_time:
            return 1
        base = self.limits.max_running
        held = sum(1 for j in self.running if j.held)
        if not held or not self.limits.held_places or len(self.running) < base:
            return base
        now = self.clock()
        if now - self.memory_read[0] >= 1.0:  # read at most once a second
            self.memory_read = (now, self.memory_to_spare())
        return base + min(held, self.limits.held_places) if self.memory_read[1] else base

    def start(self, job: Job) -> RunHandle:
        """Launch a job; a pinned run gets the CPU the fewest running runs are pinned to."""
        self.running.append(job)
        if self.isolation is not None:
            job.isolation = self.isolation.label()
        if job.profile.pins:
            job.cpu = min(self.cpus(), key=lambda c: self.pinned.get(c, 0))
            self.pinned[job.cpu] = self.pinned.get(job.cpu, 0) + 1
        job.process = self.launcher.start(job)
        return job.process

    def finish(self, d: Done[Job]) -> RunResult:
        """A run that ended -> its result, handed to ``on_run``."""
        job = d.job
        self.running = [j for j in self.running if j is not job]
        if job.cpu is not None:
            self.pinned[job.cpu] -= 1
        run = self.read(job.spec, job.rundir, d.exit_code, d.status, d.duration)
        run = replace(run, ended=self.clock() - self.t0)
        if job.process is not None and job.process.applied:
            run = replace(run, profile_applied={**run.profile_applied,
                                                "parent": job.process.applied})
        start = getattr(job.process, "start", None)
        if start and start.get("kind") == "warm" and (job.rundir / WORKERS).exists():
            start = {**start, "workers": workers((job.rundir / WORKERS).read_text())}
        if start:
            run = replace(run, profile_applied={**run.profile_applied, "start": start})
        if self.isolation is not None:
            self.isolation.update(read_shared(job.rundir))
            run = replace(run, profile_applied={**run.profile_applied,
                                                "isolation": job.isolation})
        self.on_run(run)
        return run
