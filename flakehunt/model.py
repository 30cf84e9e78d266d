"""The data every layer shares: frozen dataclasses and enums, no behaviour beyond values
derived from their own fields (a finding's rate, the gate's one-line message)."""

from __future__ import annotations

import datetime as dt
import enum
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast, overload

from flakehunt.wire import ChainLink, Evidence


class Outcome(str, enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"
    #: the run died (segfault, os._exit, timeout) while this test was running
    CRASHED = "crashed"

    @property
    def bad(self) -> bool:
        return self in (Outcome.FAILED, Outcome.ERROR, Outcome.CRASHED)


class Verdict(str, enum.Enum):
    STABLE = "stable"
    FLAKY = "flaky"
    FAILING = "failing"
    SKIPPED = "skipped"
    NOT_RUN = "not_run"


class Purpose(enum.StrEnum):
    """What a run is for."""

    #: a planned run of the whole selection
    SWEEP = "sweep"
    #: the tests that changed one state item, in an order of the pair screen
    #: (flakehunt.screen); its outcomes count in the verdicts like a sweep run's
    SCREEN = "screen"
    #: one test alone in a fresh process, repeated inside
    ISOLATE = "isolate"
    #: a failing run replayed (same tests before the test, same split, same seeds)
    REPLAY = "replay"
    #: a step of a polluter / state-setter search, or the sweep's suspects before the test
    BISECT = "bisect"
    #: a reproducer checked k/k
    REPRO = "repro"
    #: a test that failed every sweep run, run in another order (a sweep run's, reversed)
    REORDER = "reorder"
    #: a culprit checked: the polluter, one state item reset, the victim
    RESET = "reset"
    #: no purpose: what makes two runs the same experiment ignores it
    NONE = ""

    @property
    def counts(self) -> bool:
        """Its outcomes count in the verdicts: a sweep or screen run."""
        return self in (Purpose.SWEEP, Purpose.SCREEN)


class RunStatus(enum.StrEnum):
    """How a run ended."""

    OK = "ok"
    #: the run died (segfault, os._exit, an xdist worker) while a test was running
    CRASHED = "crashed"
    #: killed after --run-timeout
    TIMEOUT = "timeout"
    #: stopped by flakehunt (Ctrl-C, SIGTERM); its tests get no verdict
    INTERRUPTED = "interrupted"
    #: ended without a readable JUnit XML and without a crash
    UNREADABLE = "unreadable"
    #: pytest exited with an internal or usage error (exit code other than 0, 1, 5)
    ERROR = "error"


class Category(enum.StrEnum):
    """Why a flaky test is flaky."""

    LOOP_CLOSED = "loop-closed"
    STATE_LEAK = "state-leak"
    RACE = "race"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class RunSpec:
    """Everything needed to replay one child pytest run."""

    index: int
    order: str = "declared"  # declared | reverse | hash:SEED
    random_seed: int = 0
    workers: int = 0  # 0: no xdist
    dist: str = "load"
    profile: str = "none"
    purpose: Purpose = Purpose.SWEEP
    #: explicit test ids (in order) for targeted runs; None: the hunt's selection
    tests: tuple[str, ...] | None = None
    count: int = 1  # each test run this many times in a row (--flakehunt-count)
    #: an xdist split to replay exactly: JSON {"gw0": [test ids...], ...}
    split: str | None = None
    #: put one state item back right before a test: a ResetRequest as JSON (--flakehunt-reset)
    reset: str | None = None
    #: the sweep run's index in the hunt's whole plan, kept when a shard renumbers
    #: ``index``; bookkeeping only, so not part of what makes two runs the same experiment
    plan_index: int | None = field(default=None, compare=False)
    #: the run's PYTHONHASHSEED when it is not ``random_seed``'s: a run forked by a warm
    #: parent has the parent's (flakehunt.pool); None: derived from ``random_seed``
    hash_seed: int | None = None


@dataclass(frozen=True)
class Failure:
    phase: str | None  # setup | call | teardown | None (crash)
    message: str
    text: str = ""
    #: exception chain, outermost first (a report loaded from JSON keeps only the type)
    chain: tuple[ChainLink, ...] = ()


@dataclass(frozen=True, slots=True)  # one per test per run: no __dict__ each
class TestResult:
    __test__ = False  # not a pytest test class

    nodeid: str
    outcome: Outcome
    worker: str = "main"
    position: int | None = None
    duration: float = 0.0
    failure: Failure | None = None
    #: the child plugin's evidence record for this test (fixtures, state, loops)
    evidence: Evidence = field(default_factory=lambda: Evidence(), compare=False, hash=False)


#: the evidence of every plain result: one shared, never changed
NO_EVIDENCE = Evidence()
OUTCOMES = tuple(Outcome)
CODES = {outcome: code for code, outcome in enumerate(OUTCOMES)}


class Results(Sequence[TestResult]):
    """A run's test results, in their order, kept compact: a hunt holds one per test per
    run (50 runs of a 2,000-test suite: 100,000), and memory should not grow with that.
    A plain result (no failure, no evidence) is kept as columns - its id and worker
    (shared strings), outcome, position, duration: about 30 bytes instead of 150 - and
    made a :class:`TestResult` again when read; any other result is kept whole."""

    __slots__ = ("_ids", "_codes", "_workers", "_worker_names", "_pos", "_dur", "_whole")

    def __init__(self, results: Iterable[TestResult] = ()) -> None:
        ids: list[str] = []
        codes, workers = bytearray(), array("H")
        names: dict[str, int] = {}
        pos, dur = array("q"), array("d")
        whole: dict[int, TestResult] = {}
        for i, r in enumerate(results):
            if r.failure is not None or r.evidence:
                whole[i] = r
            ids.append(r.nodeid)
            codes.append(CODES[r.outcome])
            workers.append(names.setdefault(r.worker, len(names)))
            pos.append(-1 if r.position is None else r.position)
            dur.append(r.duration)
        self._ids, self._codes, self._workers = tuple(ids), bytes(codes), workers
        self._worker_names, self._pos, self._dur, self._whole = tuple(names), pos, dur, whole

    def __len__(self) -> int:
        return len(self._ids)

    @overload
    def __getitem__(self, i: int) -> TestResult: ...
    @overload
    def __getitem__(self, i: slice) -> tuple[TestResult, ...]: ...

    def __getitem__(self, i: int | slice) -> TestResult | tuple[TestResult, ...]:
        if isinstance(i, slice):
            return tuple(self.at(j) for j in range(*i.indices(len(self))))
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self.at(i)

    def at(self, i: int) -> TestResult:
        whole = self._whole.get(i)
        if whole is not None:
            return whole
        p = self._pos[i]
        return TestResult(self._ids[i], OUTCOMES[self._codes[i]],
                          self._worker_names[self._workers[i]], None if p < 0 else p,
                          self._dur[i], None, NO_EVIDENCE)

    def __iter__(self) -> Iterator[TestResult]:
        names, whole = self._worker_names, self._whole
        columns = zip(self._ids, self._codes, self._workers, self._pos, self._dur, strict=True)
        for i, (nodeid, code, worker, p, duration) in enumerate(columns):
            r = whole.get(i)
            yield r if r is not None else TestResult(
                nodeid, OUTCOMES[code], names[worker], None if p < 0 else p, duration, None,
                NO_EVIDENCE)

    # reading without making every result again: a hunt reads these once per flaky
    # test and run

    def of(self, nodeid: str) -> list[TestResult]:
        """The results of one test."""
        return [self.at(i) for i, n in enumerate(self._ids) if n == nodeid]

    def before(self, worker: str, position: int) -> list[str]:
        """The tests that ran on ``worker`` before ``position``, in the order they ran."""
        if worker not in self._worker_names:
            return []
        w = self._worker_names.index(worker)
        same = [(p, n) for n, wk, p in zip(self._ids, self._workers, self._pos, strict=True)
                if wk == w and 0 <= p < position]
        return [n for _, n in sorted(same)]

    def whole(self) -> list[TestResult]:
        """The results kept whole (with a failure or evidence), in order (they were
        added in it); the others have neither."""
        return list(self._whole.values())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Results | tuple | list):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"Results({list(self)!r})"


@dataclass(frozen=True)
class RunResult:
    spec: RunSpec
    status: RunStatus
    exit_code: int | None
    duration: float
    #: any sequence of results given is kept as :class:`Results`
    results: Sequence[TestResult]
    workdir: str
    crashed_test: str | None = None
    note: str = ""
    #: per worker, what the child's perturbations applied; "parent": what flakehunt did
    profile_applied: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    #: seconds from the hunt's start to this run's end (None: not recorded)
    ended: float | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.results, Results):
            object.__setattr__(self, "results", Results(self.results))

    @property
    def table(self) -> Results:
        """The results as kept: read by test, by place, or only those with evidence,
        without making the others again."""
        return cast(Results, self.results)  # made so by __post_init__


@dataclass(frozen=True)
class Culprit:
    """What a finding blames, as data a fix can act on: the leaked state, or the object
    that keeps a dead event loop."""

    #: "global" (a module-level object, its attribute or item), "env", "cwd", "logging",
    #: "cache", "loop-holder", ... (the probe's kind of state)
    kind: str
    #: where it lives: a dotted path (``pkg.mod.name._attr``), a variable name, a logger
    target: str
    #: the user's fixture that hands it to the test, if any
    fixture: str | None = None
    #: the value before and after the polluter, or how the object was met
    detail: str = ""
    #: True only after a child run reset this item alone and the victim passed
    verified: bool = False
    #: the attribute path from the fixture's value to the object ("": the value itself)
    via: str = ""


@dataclass(frozen=True)
class Fix:
    """A patch for one root cause, and what showed it works (flakehunt.fixing)."""

    #: "verified" (a run showed it: the reproducer passed as often as its rate needs and
    #: nothing newly failed), "proposed" (made, not shown to work) or "none" (no patch)
    status: str = "none"
    #: why, or what the verification runs showed
    evidence: str = ""
    #: the patch's file name in --patch-dir (``NN-slug.patch``), if there is a patch
    patch: str | None = None
    #: the unified diff, ``git apply``-able from the suite's root
    diff: str | None = None


@dataclass(frozen=True)
class Cluster:
    """One root cause: the flaky tests that fail through it (flakehunt.clusters)."""

    category: Category
    #: one line: what fails them, e.g. ``state-leak: pkg.mod.cache left changed by t``
    cause: str
    tests: tuple[str, ...]
    culprit: Culprit | None = None
    polluter: tuple[str, ...] = ()
    #: a short name for the patch's file, e.g. ``state-leak-mod-cache``
    slug: str = ""
    fix: Fix = field(default_factory=Fix)


@dataclass(frozen=True)
class Finding:
    """What flakehunt says of one test."""

    nodeid: str
    verdict: Verdict
    runs: int
    passed: int
    failed: int
    errored: int
    skipped: int
    crashed: int = 0
    #: per dimension, per value: (bad, runs), e.g. {"workers": {"0": (1, 10)}}
    breakdown: dict[str, dict[str, tuple[int, int]]] = field(
        default_factory=dict, compare=False, hash=False)
    category: Category | None = None
    suspected_fixture: str | None = None
    polluter: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    reproduce: str | None = None
    fix_hint: str | None = None
    confidence: str | None = None
    messages: tuple[str, ...] = ()
    #: not flakiness but a setup problem, e.g. "misconfiguration" (pytest-asyncio)
    problem: str | None = None
    #: the state or object the finding blames, when the evidence names one
    culprit: Culprit | None = None
    #: its root cause's patch and whether it was verified (None: not attempted)
    fix: Fix | None = None
    #: the follow-up runs made for it, by what each was for (alone, suspect, bisect, ...)
    followups: dict[str, int] = field(default_factory=dict, compare=False, hash=False)

    @property
    def bad(self) -> int:
        return self.failed + self.errored + self.crashed

    @property
    def failure_rate(self) -> float:
        return self.bad / self.runs if self.runs else 0.0


@dataclass(frozen=True)
class KnownFlake:
    """A quarantined test: one ``[[flake]]`` entry of the known-flakes file."""

    test: str
    owner: str
    reason: str
    expires: dt.date
    #: worse than this (the lower end of its 95% interval) fails the gate again
    max_failure_rate: float | None = None


@dataclass(frozen=True)
class GateResult:
    """The CI gate's verdict on a hunt: which flaky tests fail the build, and why."""

    #: the policy: "flaky", "new" or "never"
    fail_on: str
    #: tests that fail the gate, with why ("new", "quarantine expired ...", "worse ...")
    blocking: dict[str, str] = field(default_factory=dict)
    #: flaky tests the known-flakes file quarantines, within their quarantine
    quarantined: tuple[KnownFlake, ...] = ()
    #: quarantined tests that were stable in this hunt: fixed, or the hunt was too short
    stale: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return bool(self.blocking)

    @property
    def new(self) -> tuple[str, ...]:
        """Blocking tests that no quarantine covers."""
        return tuple(t for t, why in self.blocking.items() if why == "new")

    def quarantines(self, nodeid: str) -> list[KnownFlake]:
        """The quarantine entries of one test (at most one in a valid file)."""
        return [k for k in self.quarantined if k.test == nodeid]

    def message(self) -> str:
        head = f"gate (--fail-on {self.fail_on}): "
        parts = []
        if self.blocking:
            parts.append(f"{len(self.blocking)} flaky test(s) fail it: " + "; ".join(
                f"{t} ({why})" for t, why in self.blocking.items()))
        if self.quarantined:
            parts.append(f"{len(self.quarantined)} quarantined: " + ", ".join(
                f"{k.test} ({k.owner}, until {k.expires})" for k in self.quarantined))
        if self.stale:
            parts.append(f"{len(self.stale)} quarantined test(s) were stable: "
                         + ", ".join(self.stale))
        return head + ("failed" if self.failed else "passed") + "".join(f"; {p}" for p in parts)


@dataclass(frozen=True)
class HuntResult:
    rootdir: str
    selection: tuple[str, ...]
    seed: int
    runs: tuple[RunResult, ...]
    findings: tuple[Finding, ...]
    settings: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    warnings: tuple[str, ...] = ()
    #: 0, or the exit code of the signal that cut the hunt short (130, 143)
    interrupted: int = 0
    #: the CI gate's verdict (flakehunt.gate.evaluate); None when not evaluated
    gate: GateResult | None = field(default=None, compare=False, hash=False)
    #: where the hunt's time went: wall, collect, sweep and follow-up seconds, and the
    #: CPU seconds flakehunt's own process used (its orchestration cost)
    timing: dict[str, float] = field(default_factory=dict, compare=False, hash=False)
    #: the flaky tests grouped by root cause (flakehunt.clusters), each with its fix
    clusters: tuple[Cluster, ...] = ()

    @property
    def flaky(self) -> list[Finding]:
        return [f for f in self.findings if f.verdict is Verdict.FLAKY]
