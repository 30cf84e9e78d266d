"""scheduler: the sweep and the follow-up stream with a fake launcher and a fake clock.

No process is started: the fake launcher hands out handles that end after a
number of clock ticks, the fake ``read`` makes each run's result from its spec.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from pathlib import Path

import pytest

from flakehunt.errors import Interrupted
from flakehunt.isolation import Isolation
from flakehunt.model import Outcome, Purpose, RunResult, RunSpec, RunStatus, TestResult
from flakehunt.scheduler import Job, Limits, Scheduler

WORKDIR = Path("/nonexistent/flakehunt-work")  # never touched: nothing is launched for real


# -- fakes ---------------------------------------------------------------------------------
class Clock:
    """Time moves only when the scheduler sleeps: one tick per pass."""

    def __init__(self) -> None:
        self.now = 0.0
        self.on_sleep: Callable[[float], None] = lambda now: None

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += 1.0
        self.on_sleep(self.now)


class Handle:
    def __init__(self, ticks: int, clock: Clock) -> None:
        self.ticks, self.clock, self.started = ticks, clock, clock.now
        self.killed = 0
        self.waiting = False
        self.applied: dict = {}

    def poll(self) -> int | None:
        if self.killed:
            return -9
        return 0 if self.clock.now - self.started >= self.ticks else None

    def kill(self) -> None:
        self.killed += 1


class Launcher:
    """Each run lasts ``spec.random_seed`` ticks (the fakes' way to give it a length)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.starts: list[Job] = []
        self.live: set[int] = set()
        self.live_at_start: list[frozenset[int]] = []

    def start(self, job: Job) -> Handle:
        self.starts.append(job)
        self.live_at_start.append(frozenset(self.live))
        self.live.add(job.spec.index)
        return Handle(job.spec.random_seed, self.clock)

    def command(self, spec: RunSpec) -> str:
        return f"replay {spec.index}"

    @property
    def started(self) -> list[int]:
        return [j.spec.index for j in self.starts]


class Progress:
    def __init__(self) -> None:
        self.done: list[tuple[int, int]] = []  # (run index, flaky so far)
        self.added: list[int] = []
        self.notes: list[str] = []

    def start(self, total: int, tests: int) -> None: ...

    def add_total(self, more: int) -> None:
        self.added.append(more)

    def run_done(self, run: RunResult, flaky: int) -> None:
        self.done.append((run.spec.index, flaky))

    def note(self, text: str) -> None:
        self.notes.append(text)


#: run index -> {nodeid: outcome}; a test not named passes, a test named None did not run
Outcomes = Callable[[RunSpec], dict[str, Outcome | None]]


class Setup:
    def __init__(self, nodeids=("t.py::a",), slots=1, needed=None, outcomes: Outcomes | None = None,
                 cpus=(0, 1), max_running=None):
        self.clock = Clock()
        self.launcher = Launcher(self.clock)
        self.progress = Progress()
        self.runs: list[RunResult] = []
        self.read_statuses: list[tuple[int, RunStatus]] = []
        self.outcomes = outcomes or (lambda spec: {})
        self.nodeids = nodeids
        self.scheduler = Scheduler(
            self.launcher, self.read, WORKDIR, nodeids,
            Limits(slots, max_running or 3 * slots), needed, progress=self.progress,
            on_run=self.runs.append, clock=self.clock, sleep=self.clock.sleep,
            cpus=lambda: list(cpus))

    def read(self, spec: RunSpec, rundir: Path, exit_code: int | None, status: RunStatus,
             duration: float) -> RunResult:
        self.launcher.live.discard(spec.index)
        self.read_statuses.append((spec.index, status))
        told = self.outcomes(spec)
        results = tuple(TestResult(n, told.get(n) or Outcome.PASSED, position=i + 1)
                        for i, n in enumerate(self.nodeids)
                        if n not in told or told[n] is not None)
        return RunResult(spec, status, exit_code, duration, results, str(rundir))


def sweep_specs(n: int, ticks: int = 2, **kw) -> list[RunSpec]:
    return [RunSpec(index=i, random_seed=ticks, **kw) for i in range(n)]


# -- the sweep -----------------------------------------------------------------------------
def test_the_sweep_runs_only_what_the_stop_rule_needs_and_counts_the_rest():
    s = Setup(needed=3)
    report = s.scheduler.sweep(sweep_specs(10))
    assert s.launcher.started == [0, 1, 2]
    assert report.not_needed == 7 and report.unstarted == 0 and report.interrupted is None
    assert [r.spec.index for r in s.runs] == [0, 1, 2]
    assert [i for i, _ in s.progress.done] == [0, 1, 2]


def test_the_sweep_tops_up_as_results_come_in():
    # run 1 died before t.py::b: b still needs a third run once it ended, queued only then
    s = Setup(nodeids=("t.py::a", "t.py::b"), needed=3,
              outcomes=lambda spec: {"t.py::b": None} if spec.index == 1 else {})
    report = s.scheduler.sweep(sweep_specs(10))
    assert s.launcher.started == [0, 1, 2, 3]
    assert report.not_needed == 6


def test_a_flaky_test_is_settled_at_once():
    s = Setup(needed=5, outcomes=lambda spec: {"t.py::a": Outcome.FAILED} if spec.index == 1
              else {})
    report = s.scheduler.sweep(sweep_specs(10))
    assert s.launcher.started == [0, 1]  # the queued runs 2-4 are dropped
    assert report.not_needed == 8
    assert s.progress.done == [(0, 0), (1, 1)]  # one flaky test so far


def test_runs_in_flight_finish_when_the_rule_is_satisfied():
    s = Setup(slots=2, needed=2)
    report = s.scheduler.sweep(sweep_specs(6))
    assert s.launcher.started == [0, 1]
    assert [r.spec.index for r in s.runs] == [0, 1]
    assert report.not_needed == 4


def test_without_a_stop_rule_every_planned_run_runs():
    s = Setup(slots=2)
    report = s.scheduler.sweep(sweep_specs(5))
    assert sorted(s.launcher.started) == [0, 1, 2, 3, 4]
    assert report.not_needed == 0 and report.unstarted == 0


def test_the_budget_leaves_the_rest_unstarted_and_counts_it():
    s = Setup()  # one slot, runs of two ticks: runs end at 2, 4, 6...
    report = s.scheduler.sweep(sweep_specs(10), deadline=5)
    assert s.launcher.started == [0, 1, 2]  # run 2 ended at 6, past the deadline
    assert report.unstarted == 7 and report.not_needed == 0
    assert len(s.runs) == 3


def test_the_budget_keeps_plan_order_without_a_stop_rule():
    specs = [RunSpec(index=0, random_seed=1), RunSpec(index=1, random_seed=1, profile="quota-25"),
             RunSpec(index=2, random_seed=1, workers=2)]
    s = Setup(slots=2)
    s.scheduler.sweep(specs, deadline=100)
    assert s.launcher.started == [0, 1, 2]


def test_wide_runs_go_first_then_throttled_ones_then_the_rest():
    specs = [RunSpec(index=0, random_seed=1), RunSpec(index=1, random_seed=1, profile="quota-25"),
             RunSpec(index=2, random_seed=1, workers=2), RunSpec(index=3, random_seed=1)]
    s = Setup(slots=2)
    s.scheduler.sweep(specs)
    assert s.launcher.started == [2, 1, 0, 3]
    assert s.launcher.live_at_start[0] == frozenset()  # the wide run had the machine


def test_the_tighter_quota_goes_first_it_takes_longest():
    specs = [RunSpec(index=0, random_seed=1), RunSpec(index=1, random_seed=1, profile="quota-25"),
             RunSpec(index=2, random_seed=1, profile="quota-10"),
             RunSpec(index=3, random_seed=1, profile="quota-25", workers=2),
             RunSpec(index=4, random_seed=1, profile="quota-10", workers=2)]
    s = Setup(slots=2, max_running=1)
    s.scheduler.sweep(specs)
    assert s.launcher.started == [4, 3, 2, 1, 0]


def test_placement_puts_the_wide_first_under_the_stop_rule_too():
    specs = [RunSpec(index=0, random_seed=1), RunSpec(index=1, random_seed=1, workers=2)]
    s = Setup(slots=2, needed=2)
    s.scheduler.sweep(specs)
    assert s.launcher.started == [1, 0]


def deferring(s: Setup, startup: int = 2) -> list[Handle]:
    """Handles whose profile applies ``startup`` ticks after they start (a quota's)."""
    handles: list[Handle] = []
    start = s.launcher.start

    def started(job: Job) -> Handle:
        handle = start(job)
        handle.waiting = job.profile.defers
        handles.append(handle)
        return handle

    def tick(now: float) -> None:
        for h in handles:
            h.waiting = h.waiting and now - h.started < startup

    s.launcher.start = started
    s.clock.on_sleep = tick
    return handles


def test_a_throttled_xdist_run_starts_beside_one_whose_quota_applied():
    # each needs both CPUs to start; once the first is held to its quota (0.2 CPU)
    # the second starts beside it instead of waiting for it to end
    specs = [RunSpec(index=i, random_seed=6, profile="quota-10", workers=2) for i in range(2)]
    s = Setup(slots=2)
    deferring(s)
    s.scheduler.sweep(specs)
    assert s.launcher.live_at_start == [frozenset(), frozenset({0})]
    assert s.launcher.starts[1].spec.index == 1


def test_a_throttled_xdist_run_needs_one_cpu_free_to_start_a_plain_one_the_machine():
    # a narrow run holds one of two CPUs: the throttled xdist run starts beside it
    # (its start-up shares a CPU for a moment); the plain xdist run waits for both
    specs = [RunSpec(index=0, random_seed=6),
             RunSpec(index=1, random_seed=6, profile="quota-10", workers=2),
             RunSpec(index=2, random_seed=6, workers=2)]
    s = Setup(slots=2)
    deferring(s)
    s.scheduler.enqueue(jobs := deque(), [
        s.scheduler.job(spec) for spec in specs], placed=False)
    s.scheduler.execute(jobs, s.scheduler.finish)
    live = dict(zip(s.launcher.started, s.launcher.live_at_start, strict=True))
    assert live[1] == {0}
    assert live[2] == frozenset()


@pytest.mark.parametrize(("slots", "workers", "needs"), [
    (2, 2, 1),  # as wide as the machine: all CPUs but one
    (4, 4, 3),
    (8, 2, 2),  # a fraction of the machine: all it takes
    (1, 2, 1),
])
def test_what_a_throttled_wide_run_needs_free_to_start(slots, workers, needs):
    s = Setup(slots=slots)
    job = s.scheduler.job(RunSpec(index=0, profile="quota-25", workers=workers))
    assert job.needs == needs
    assert job.slots == workers  # once started, its start-up counts whole until it applies
    plain = s.scheduler.job(RunSpec(index=1, workers=workers))
    assert plain.needs == plain.slots == workers


def test_runs_overlap_throttled_ones_by_at_most_a_quarter_of_the_machine():
    s = Setup(slots=2)
    held = [Job(RunSpec(index=0, profile="quota-25", workers=2), WORKDIR) for _ in range(3)]
    for job in held:
        job.process = Handle(1, s.clock)  # not waiting: its quota applied (0.5 CPU)
    plain = Job(RunSpec(index=0, workers=2), WORKDIR)
    plain.process = Handle(1, s.clock)
    assert s.scheduler.capacity([plain]) == 2
    assert s.scheduler.capacity(held[:1]) == 2.5
    assert s.scheduler.capacity(held) == 2.5


@pytest.mark.parametrize(("held_places", "spare", "most"), [
    (0, True, 6),  # --jobs given: never more than the limit
    (4, True, 10),  # a place more for each held run, up to four
    (4, False, 6),  # no memory to spare: the limit
])
def test_runs_held_to_a_quota_take_places_beyond_the_limit(held_places, spare, most):
    specs = [RunSpec(index=i, random_seed=30, profile="quota-10") for i in range(12)]
    s = Setup(slots=2)
    s.scheduler.limits = Limits(2, 6, held_places=held_places)
    s.scheduler.memory_to_spare = lambda: spare
    deferring(s)
    s.scheduler.sweep(specs)
    assert max(len(live) + 1 for live in s.launcher.live_at_start) == most
    assert sorted(s.launcher.started) == list(range(12))


def test_the_default_limits_give_held_runs_two_places_per_cpu_unless_jobs_is_given():
    assert Limits.for_jobs(0).held_places == 2 * Limits.for_jobs(0).slots
    assert Limits.for_jobs(3) == Limits(3, 3, None, held_places=0)


def test_throttled_runs_leave_the_cpus_worth_of_places_to_the_others():
    # six places on two CPUs: once four throttled runs hold theirs, the plain runs
    # queued behind them go first (six throttled runs would keep 0.6 CPU busy)
    specs = [RunSpec(index=i, random_seed=20, profile="quota-10") for i in range(6)]
    specs += [RunSpec(index=6 + i, random_seed=2) for i in range(4)]
    s = Setup(slots=2)
    deferring(s)
    s.scheduler.sweep(specs)
    throttled = [j.throttled for j in s.launcher.starts]
    assert throttled[:6] == [True] * 4 + [False] * 2
    assert sorted(s.launcher.started) == list(range(10))


def test_the_isolation_pilot_is_a_short_plain_run():
    specs = [RunSpec(index=0, random_seed=1, profile="quota-10", workers=2),
             RunSpec(index=1, random_seed=1, workers=2),
             RunSpec(index=2, random_seed=1, profile="quota-25"), RunSpec(index=3, random_seed=1)]
    s = Setup(slots=2)
    s.scheduler.isolation = Isolation(probe=lambda: None)
    s.scheduler.sweep(specs)
    assert s.launcher.started[:2] == [3, 0]  # then the wide throttled one
    assert s.launcher.live_at_start[1] == frozenset()  # the pilot ran alone


def test_a_pinned_run_gets_the_least_used_cpu():
    specs = sweep_specs(3, profile="single-core")
    s = Setup(slots=2)
    s.scheduler.sweep(specs)
    cpus = [j.cpu for j in s.launcher.starts]
    assert cpus[:2] == [0, 1]  # two at once: one CPU each
    assert cpus[2] == 0  # both done: CPU 0 is free again
    assert s.scheduler.pinned == {0: 0, 1: 0} and s.scheduler.in_flight == 0


@pytest.mark.parametrize("exc, code", [(KeyboardInterrupt(), 130), (Interrupted(143), 143)])
def test_an_interrupted_sweep_reports_the_runs_in_flight_and_says_so(exc, code):
    s = Setup(slots=2)

    def interrupt(now: float) -> None:
        if now >= 3:
            raise exc

    s.clock.on_sleep = interrupt
    report = s.scheduler.sweep(sweep_specs(6, ticks=2))
    assert report.interrupted == code
    # runs 0 and 1 ended at 2; runs 2 and 3 were running, reported as interrupted
    assert s.read_statuses == [(0, RunStatus.OK), (1, RunStatus.OK),
                               (2, RunStatus.INTERRUPTED), (3, RunStatus.INTERRUPTED)]
    assert len(s.runs) == 4


def test_runs_get_their_own_folder_and_when_they_ended():
    s = Setup()
    s.scheduler.sweep(sweep_specs(2, ticks=3))
    assert [j.rundir for j in s.launcher.starts] == [WORKDIR / "run-0000", WORKDIR / "run-0001"]
    assert [r.ended for r in s.runs] == [3.0, 6.0]
    assert [r.workdir for r in s.runs] == [str(WORKDIR / "run-0000"), str(WORKDIR / "run-0001")]


def test_what_the_parent_applied_is_kept_with_the_run():
    s = Setup()
    start = s.launcher.start

    def applying(job: Job) -> Handle:
        handle = start(job)
        handle.applied = {"mechanism": "duty-cycle"}
        return handle

    s.launcher.start = applying
    s.scheduler.sweep(sweep_specs(1))
    assert s.runs[0].profile_applied == {"parent": {"mechanism": "duty-cycle"}}


# -- the follow-up stream ------------------------------------------------------------------
def step(test: str, *ticks: int) -> list[RunSpec]:
    return [RunSpec(index=0, purpose=Purpose.ISOLATE, tests=(test,), random_seed=t)
            for t in ticks]


def test_a_keys_next_step_starts_as_soon_as_its_own_runs_are_done():
    s = Setup(slots=2)
    seen: list[tuple[str, list[int]]] = []

    def then(key: str, runs: list[RunResult]) -> list[RunSpec]:
        seen.append((key, [r.spec.index for r in runs]))
        if key == "fast" and len(seen) < 3:
            return step("t.py::fast", 1)
        return []

    s.scheduler.stream({"slow": step("t.py::slow", 6), "fast": step("t.py::fast", 1)}, then)
    started = {j.spec.index: (j.key, j.spec.random_seed) for j in s.launcher.starts}
    assert started == {0: ("slow", 6), 1: ("fast", 1), 2: ("fast", 1), 3: ("fast", 1)}
    # fast's second and third steps ran while slow's first was still running
    assert all(0 in live for live in s.launcher.live_at_start[2:4])
    assert seen == [("fast", [1]), ("fast", [2]), ("fast", [3]), ("slow", [0])]
    assert s.progress.added == [1, 1, 1, 1]


def test_a_step_runs_in_spec_order_and_then_gets_its_runs_in_index_order():
    s = Setup(slots=3)
    got: list[list[int]] = []

    def then(key: str, runs: list[RunResult]) -> list[RunSpec]:
        got.append([r.spec.index for r in runs])
        return []

    s.scheduler.stream({"k": step("t.py::k", 5, 1, 3)}, then)
    assert s.launcher.started == [0, 1, 2]
    assert [r.spec.index for r in s.runs] == [1, 2, 0]  # ended shortest first
    assert got == [[0, 1, 2]]


def test_the_stream_numbers_its_runs_after_the_sweeps():
    s = Setup(slots=2)
    s.scheduler.sweep(sweep_specs(3))
    s.scheduler.stream({"k": step("t.py::k", 1, 1)}, lambda key, runs: [])
    assert s.launcher.started[3:] == [3, 4]
    assert [j.rundir.name for j in s.launcher.starts[3:]] == ["run-0003", "run-0004"]
    assert s.scheduler.next_index == 5


def test_a_throttled_follow_up_goes_ahead_of_plain_ones_queued_before_it():
    s = Setup(slots=2)
    throttled = [RunSpec(index=0, random_seed=1, profile="quota-25", tests=("t.py::q",))]

    def then(key: str, runs: list[RunResult]) -> list[RunSpec]:
        return throttled if key == "first" and runs[0].spec.profile == "none" else []

    s.scheduler.stream({"first": step("t.py::a", 1), "plain": step("t.py::b", 1, 1, 1)}, then)
    assert s.launcher.started == [0, 1, 4, 2, 3]
    assert s.launcher.starts[2].spec.profile == "quota-25"


def test_the_stream_without_steps_runs_nothing():
    s = Setup()
    s.scheduler.stream({"k": []}, lambda key, runs: pytest.fail("no runs, no then"))
    assert s.launcher.starts == [] and s.progress.added == []


def test_command_and_note_are_the_runs_protocol():
    s = Setup()
    assert s.scheduler.command(RunSpec(index=7)) == "replay 7"
    s.scheduler.note("following up")
    assert s.progress.notes == ["following up"]
