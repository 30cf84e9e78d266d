"""What is known about one flaky test, and the pure questions asked of it.

:class:`Facts` gathers the sweep's runs of a test and the tallies its follow-up
runs feed (each run filed under its :class:`Probe`, see
:mod:`flakehunt.classify.followup`); the functions below are predicates and look-ups
over those results: who ran before whom, which tests are cleared, whether the test
is order-dependent, brittle, nondeterministic, which fixture the failures point at.
Nothing here runs anything or words anything.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace

from flakehunt import signatures
from flakehunt.model import (
    Failure,
    Finding,
    Outcome,
    Purpose,
    RunResult,
    RunSpec,
    RunStatus,
    TestResult,
)
from flakehunt.wire import Anatomy, FixtureEntry, StateChange

#: a failing or passing execution of the test, with the run it was part of
Execution = tuple[RunResult, TestResult]


@dataclass(frozen=True)
class Context:
    """What classification knows beyond the runs, handed in as data: facts of the
    suite (from collection) and of the profiles (how much each slows a run down)."""

    #: project fixtures named ``event_loop``, dead since pytest-asyncio 1.0
    dead_event_loop: tuple[str, ...] = ()
    #: profile name -> roughly how much longer a run takes under it (absent: 1.0)
    slowdowns: Mapping[str, float] = field(default_factory=dict)


class Probe(enum.StrEnum):
    """What a follow-up run is for, and so which tally of :class:`Facts` it feeds."""

    #: the test alone in a fresh process, repeated inside: ``alone_first``/``alone_later``
    ALONE = "alone"
    #: the sweep's suspects, then the test, in one process: ``suspect_run``
    SUSPECT = "suspect"
    #: a failure under xdist: the same tests before it in one process: ``serial_replay``
    SERIAL = "serial"
    #: the failing run replayed under identical conditions: ``replay``
    REPLAY = "replay"
    #: a step of a polluter / state-setter search: no tally, only ``tried``
    BISECT = "bisect"
    #: a trial of the reproducer: no tally, only ``tried``
    REPRO = "repro"
    #: a test that failed every sweep run, in another order: ``other_order`` (a pass is
    #: also a passing execution, in ``good``)
    REORDER = "reorder"
    #: its polluter, one leaked item reset, then it: ``reset_item``/``reset_passed``
    RESET = "reset"
    #: the failing run replayed with other random and hash seeds: ``reseeded``
    RESEED = "reseed"


@dataclass
class Facts:
    """Everything measured about one flaky test."""

    nodeid: str
    bad: list[Execution] = field(default_factory=list)
    good: list[Execution] = field(default_factory=list)
    #: first execution in a fresh process, alone: [bad, total]
    alone_first: list[int] = field(default_factory=lambda: [0, 0])
    #: later repetitions in the same process (--flakehunt-count): [bad, total]
    alone_later: list[int] = field(default_factory=lambda: [0, 0])
    #: the failing run replayed under identical conditions: [bad, total]
    replay: list[int] = field(default_factory=lambda: [0, 0])
    #: the failing run replayed with other random and hash seeds: [bad, total]
    reseeded: list[int] = field(default_factory=lambda: [0, 0])
    #: for a failure under xdist: the same tests before it, in one process: [bad, total]
    serial_replay: list[int] = field(default_factory=lambda: [0, 0])
    #: the sweep's suspects (see :func:`narrowed`) run before it, in one process: [bad, total]
    suspect_run: list[int] = field(default_factory=lambda: [0, 0])
    suspects: list[str] = field(default_factory=list)
    #: a test that failed every sweep run, run in another order: [bad, total]
    other_order: list[int] = field(default_factory=lambda: [0, 0])
    #: candidates a polluter search was run over (empty: none was run)
    searched: list[str] = field(default_factory=list)
    polluters: list[str] = field(default_factory=list)
    #: the polluters make it fail only together (no single one does)
    together: bool = False
    #: the polluter is the test that created the closed loop the failure met, and its
    #: run before this test reproduced the failure (no bisection was needed)
    by_creator: bool = False
    setters: list[str] = field(default_factory=list)
    #: state a polluter changed and did not restore, from its own records
    leaked: list[StateChange] = field(default_factory=list)
    #: the one leaked item reset before the test in a follow-up run, and whether the
    #: test then passed (None: no such run, or it did not run the test)
    reset_item: StateChange | None = None
    reset_passed: bool | None = None
    #: runs in a row the test passed with ``reset_item`` reset (the reproducer's k)
    reset_passes: int = 0
    #: leaked items reset alone before the test, a run each, that did not make it pass
    reset_failed: list[StateChange] = field(default_factory=list)
    reproduce: str | None = None
    verified: tuple[int, int] = (0, 0)
    repro_spec: RunSpec | None = None
    #: facts of the suite and the profiles (e.g. dead ``event_loop`` fixtures, slowdowns)
    context: Context = field(default_factory=Context)
    #: every follow-up run of this test by what it ran (spec without index/purpose): [bad, n]
    tried: dict[RunSpec, list[int]] = field(default_factory=dict)
    #: follow-up runs that tell nothing of the test (see :func:`missed`), never counted
    #: as passed: what each was for, its index, why
    unrun: list[tuple[Probe, int, str]] = field(default_factory=list)
    #: follow-up runs made for this test, by what each was for (a run reused is not counted)
    spent: dict[str, int] = field(default_factory=dict)
    #: follow-up runs this test may make, and its culprit search (the suspects' run
    #: included) of them; 0: no bound (see :func:`~flakehunt.classify.followup.bounds`)
    bound: int = 0
    search_bound: int = 0
    #: its culprit search's runs when it stopped at the bound, naming no one (0: it did not)
    search_cut: int = 0

    def record(self, run: RunResult, probe: Probe) -> bool:
        """File a follow-up run under ``tried``; False, and noted in ``unrun``, when it
        did not run the test: it then feeds no tally."""
        self.spent[probe.value] = self.spent.get(probe.value, 0) + 1
        why = missed(run, self.nodeid)
        if why is not None:
            self.unrun.append((probe, run.spec.index, why))
            return False
        cell = self.tried.setdefault(spec_key(run.spec), [0, 0])
        cell[0] += is_bad(run, self.nodeid)
        cell[1] += 1
        return True


def spec_key(spec: RunSpec) -> RunSpec:
    """What makes two runs the same experiment: all but their index and purpose."""
    return replace(spec, index=0, purpose=Purpose.NONE)


def observe(cell: list[int], bad: bool) -> None:
    """One more observation in a [bad, total] tally."""
    cell[0] += bad
    cell[1] += 1


def gather(finding: Finding, runs: list[RunResult], context: Context) -> Facts:
    """The sweep's executions of the test, good and bad; a first execution in a fresh
    process counts as a run alone, for free."""
    facts = Facts(finding.nodeid, context=context)
    for run in runs:
        if not run.spec.purpose.counts:
            continue
        for r in results_for(run, finding.nodeid):
            if r.outcome.bad:
                facts.bad.append((run, r))
            elif r.outcome is Outcome.PASSED:
                facts.good.append((run, r))
            if r.position == 1 and (r.outcome.bad or r.outcome is Outcome.PASSED):
                observe(facts.alone_first, r.outcome.bad)
    return facts


# -- helpers over results -------------------------------------------------------------------

def results_for(run: RunResult, nodeid: str) -> list[TestResult]:
    return run.table.of(nodeid)


def missed(run: RunResult, nodeid: str) -> str | None:
    """Why a follow-up run tells nothing of the test, or None when it does: pytest
    errored (a test not found, a collection or an internal error), or the run never
    executed the test (it crashed or timed out before it, or did not collect it)."""
    errored = run.status == RunStatus.ERROR
    if not errored and results_for(run, nodeid):
        return None
    lines = [line.strip() for line in run.note.splitlines() if line.strip()]
    detail = next((line for line in lines if "error" in line.lower()), lines[-1] if lines else "")
    why = "pytest errored" if errored else "the test did not run"
    return f"{why} (exit code {run.exit_code})" + (f": {detail[:200]}" if detail else "")


def is_bad(run: RunResult, nodeid: str) -> bool:
    return any(r.outcome.bad for r in results_for(run, nodeid))


def preceding(run: RunResult, result: TestResult) -> list[str]:
    """Tests that ran before ``result`` in the same process, in order."""
    if result.position is None:
        return []
    return run.table.before(result.worker, result.position)


def failures(facts: Facts) -> list[Failure]:
    return [r.failure for _, r in facts.bad if r.failure is not None]


def user_fixtures(result: TestResult) -> list[FixtureEntry]:
    return [f for f in result.evidence.get("fixtures", []) if f.get("user")]


def user_fixture_names(fx: Facts) -> set[str]:
    return {f["name"] for _, r in fx.bad + fx.good for f in user_fixtures(r)}


def anatomies(fx: Facts) -> Iterator[Anatomy]:
    """Every failure's anatomy, failing execution by failing execution."""
    for _, r in fx.bad:
        yield from r.evidence.get("failure_anatomy", [])


def cheapest_profile(finding: Finding, slowdowns: Mapping[str, float]) -> tuple[str, float]:
    """The profile where a failure is cheapest to see again, with its failure rate:
    the least slowdown per failure (a test failing 1/3 under ``none`` and 2/3 under
    ``quota-25``, four times slower, is watched under ``none``)."""
    scored = [(slowdowns.get(name, 1.0) * runs / bad, name != "none", name, bad / runs)
              for name, (bad, runs) in finding.breakdown.get("profile", {}).items()
              if bad and runs]
    if not scored:
        return "none", finding.failure_rate
    *_, name, rate = min(scored)  # on a tie the machine as it is
    return name, rate


def shortest_failure(facts: Facts) -> Execution:
    """The failing execution cheapest to replay: serial runs first, then profiles
    that slow the run down least, then the fewest tests before it."""
    slowdowns = facts.context.slowdowns

    def cost(rr: Execution) -> tuple[bool, float, int, int]:
        spec = rr[0].spec
        return (spec.workers > 0, slowdowns.get(spec.profile, 1.0), len(preceding(*rr)),
                spec.index)

    return min(facts.bad, key=cost)


# -- who could be the culprit -----------------------------------------------------------------

def narrowed(fx: Facts, candidates: list[str]) -> list[str]:
    """The candidates the sweep has not cleared: :func:`prune`, then only those that
    preceded the victim in every failing run (with one deterministic polluter, it did).
    Several alternative polluters can empty the intersection: then the pruned list."""
    kept = prune(fx, candidates)
    prefixes = [set(preceding(run, r)) for run, r in fx.bad]
    common = [c for c in kept if all(c in p for p in prefixes)]
    return common or kept


def prune(fx: Facts, candidates: list[str]) -> list[str]:
    """Drop tests that ran before the victim in a run where it passed: with one
    deterministic polluter, none of them can be it. Fall back to all if none is left."""
    innocent: set[str] = set()
    for run, result in fx.good:
        innocent.update(preceding(run, result))
    kept = [c for c in candidates if c not in innocent]
    return kept or candidates


def prime_suspect(fx: Facts, result: TestResult, run: RunResult,
                  candidates: list[str]) -> str | None:
    """The candidate the failing run's own records single out: the test whose event
    loop, now closed, the failure met; else the one candidate that left changed state
    under an object a fixture of the victim hands it."""
    made = loop_creators(result, candidates)
    if made:
        return made[0]
    handed = {f["global"] for f in user_fixtures(result) if f.get("global")}
    changed = [r.nodeid for r in run.table.whole() if r.nodeid in candidates
               and any(c.get("what", "").startswith(g + ".") or c.get("what") == g
                       for c in r.evidence.get("state") or () for g in handed)]
    return changed[0] if len(changed) == 1 else None


def loop_creators(result: TestResult, candidates: list[str]) -> list[str]:
    """The candidates that created a closed event loop the failure met, as met."""
    made = [loop.get("created_by_test") for fa in result.evidence.get("failure_anatomy") or ()
            for loop in fa.get("loops") or () if loop.get("closed")]
    return list(dict.fromkeys(m for m in made if m in candidates))


def may_have_setter(fx: Facts) -> bool:
    """Some test preceded it in a serial run where it passed and in no run where it
    failed: only then can it be brittle (need a state-setter first)."""
    return any(rr[0].spec.workers == 0 and setter_candidates(fx, preceding(*rr))
               for rr in fx.good)


def setter_candidates(fx: Facts, candidates: list[str]) -> list[str]:
    """Drop tests that ran before the test in a run where it failed anyway: with one
    deterministic state-setter, none of them can be it (a test that fails only when it
    runs first in a fresh process, e.g. a race lost on a cold start, keeps none)."""
    guilty: set[str] = set()
    for run, result in fx.bad:
        guilty.update(preceding(run, result))
    return [c for c in candidates if c not in guilty]


def observations(fx: Facts) -> list[tuple[tuple[str, ...], bool]]:
    """What every run showed of the tests before the test in one process: the sweep's
    executions (a failing one only from a run without xdist workers: with them, another
    worker's tests may have done it), and the follow-ups that ran explicit tests once
    each, in one process, the test last, when all their runs agreed."""
    seen = [(tuple(preceding(run, r)), True) for run, r in fx.bad if run.spec.workers == 0]
    seen += [(tuple(preceding(run, r)), False) for run, r in fx.good]
    for spec, (bad, n) in fx.tried.items():
        tests = spec.tests or ()
        if (tests[-1:] == (fx.nodeid,) and spec.count == 1 and spec.workers == 0
                and spec.reset is None and bad in (0, n)):
            seen.append((tests[:-1], bad == n))
    return seen


def leaked_by(culprits: list[str], runs: list[RunResult]) -> list[StateChange]:
    """The state the culprits changed and did not restore, from the first run that
    recorded any, each change stamped with who made it."""
    out: list[StateChange] = []
    for run in runs:
        for r in run.table.whole():
            if r.nodeid in culprits and r.evidence.get("state"):
                for change in r.evidence.get("state", []):
                    entry: StateChange = {**change, "by": r.nodeid}
                    if entry not in out:
                        out.append(entry)
        if out:
            break
    return out


# -- what kind of flakiness -------------------------------------------------------------------

def mixed(cell: list[int]) -> bool:
    """A [bad, total] tally with both outcomes in it."""
    return 0 < cell[0] < cell[1]


def lifecycle(fx: Facts) -> bool:
    """Every failure carries an event-loop lifecycle signature."""
    fails = failures(fx)
    return bool(fails) and all(signatures.match(signatures.LIFECYCLE, x) for x in fails)


def life_signature(fx: Facts) -> signatures.Signature | None:
    """The event-loop lifecycle signature of the first failure that has one."""
    for failure in failures(fx):
        found = signatures.match(signatures.LIFECYCLE, failure)
        if found:
            return found
    return None


def all_bad(cell: list[int]) -> bool:
    """A [bad, total] tally that was tried and always came out bad."""
    return cell[1] > 0 and cell[0] == cell[1]


def order_dependent(fx: Facts) -> bool:
    """Never failed first thing in a fresh process (alone), and failed every time some
    order that failed was run again: its failing run replayed, the part of it the sweep
    left under suspicion, or (a failure under xdist) the same tests before it in one
    process; a replay that passed under identical conditions says timing, not order.
    Repetitions inside one process are another question (self-pollution, timing): they
    do not decide whether other tests before it make it fail."""
    return (fx.alone_first[1] > 0 and fx.alone_first[0] == 0 and not mixed(fx.replay)
            and any(all_bad(c) for c in (fx.replay, fx.suspect_run, fx.serial_replay)))


def self_polluting(fx: Facts) -> bool:
    """Passes first in a fresh process, fails whenever it ran before in that process."""
    return (fx.alone_first[1] > 0 and fx.alone_first[0] == 0 and fx.alone_later[1] > 0
            and fx.alone_later[0] == fx.alone_later[1])


def brittle(fx: Facts) -> bool:
    """Always fails alone (seen at least twice, and its repeats agree), yet passed in
    some sweep runs: needs a state-setter first."""
    return (fx.alone_first[1] >= 2 and fx.alone_first[0] == fx.alone_first[1]
            and not mixed(fx.alone_later) and bool(fx.good))


def nondeterministic(fx: Facts) -> bool:
    """Alone its outcome came and went, or its failing run replayed did not always fail
    - with its own seeds, or with others (the seeds decide, not the order)."""
    mixed_alone = mixed(fx.alone_first) or mixed(fx.alone_later)
    replay_differs = fx.replay[1] > 0 and fx.replay[0] < fx.replay[1]
    return mixed_alone or replay_differs or seed_decides(fx)


def seed_decides(fx: Facts) -> bool:
    """Its failing order replayed with other random and hash seeds passed at least once."""
    return fx.reseeded[1] > 0 and fx.reseeded[0] < fx.reseeded[1]


def cross_worker(fx: Facts) -> bool:
    """Fails when xdist workers run beside it, passes with the same tests in one process."""
    return (fx.serial_replay[1] > 0 and fx.serial_replay[0] == 0 and fx.replay[0] > 0
            and fx.alone_first[0] == 0)


def only_with_workers(f: Finding) -> bool:
    """The sweep saw it fail with xdist workers, and never in a serial run."""
    cells = f.breakdown.get("workers", {})
    serial = cells.get("0", (0, 0))
    parallel_bad = sum(b for v, (b, _) in cells.items() if v != "0")
    return serial[1] > 0 and serial[0] == 0 and parallel_bad > 0


# -- which fixture the failures point at ------------------------------------------------------

def wide_teardown(fx: Facts) -> tuple[str, str] | None:
    """(fixture, scope) when every failure is a teardown error raised by one fixture of
    a scope wider than the test."""
    found: set[tuple[str, str]] = set()
    for _, r in fx.bad:
        anat = r.evidence.get("failure_anatomy") or []
        scopes = {f["name"]: f.get("scope") for f in r.evidence.get("fixtures", [])}
        raisers = [a.get("raised_in_fixture") for a in anat if a.get("phase") == "teardown"]
        hit = [(name, scopes.get(name)) for name in raisers if name]
        if not hit or any(a.get("phase") != "teardown" for a in anat):
            return None
        name, scope = hit[0]
        if scope is None or scope == "function":
            return None
        found.add((name, scope))
    return found.pop() if len(found) == 1 else None


def wide_cached_fixtures(fx: Facts) -> list[FixtureEntry]:
    """The first failure's user fixtures of a wider scope, reused from an earlier test."""
    if not fx.bad:
        return []
    return [f for f in user_fixtures(fx.bad[0][1])
            if f.get("scope") != "function" and not f.get("fresh")]


def involved_fixture(fx: Facts) -> str | None:
    """The first user fixture whose object a failing frame met (pytest's and plugins'
    fixtures are routes, never culprits)."""
    users = user_fixture_names(fx)
    for fa in anatomies(fx):
        for name in fa.get("involved") or {}:
            if name in users:
                return name
    return None


def route(fx: Facts) -> str | None:
    """pytest's or a plugin's fixture through which a failing frame met an object."""
    for fa in anatomies(fx):
        for name in fa.get("routes") or {}:
            return name
    return None


def on_failing_line(fx: Facts) -> str | None:
    """A user fixture named on the test's failing line."""
    users = user_fixture_names(fx)
    for fa in anatomies(fx):
        for name in fa.get("on_failing_line") or ():
            if name in users:
                return name
    return None


def raised_in(fx: Facts) -> str | None:
    """The first user fixture a failure was raised in."""
    users = user_fixture_names(fx)
    for fa in anatomies(fx):
        raiser = fa.get("raised_in_fixture")
        if raiser and raiser in users:
            return raiser
    return None


def loop_maker(fx: Facts) -> str | None:
    """The user fixture whose set-up created a foreign loop a failure met (on any
    thread: a TestClient's portal loop is its fixture's)."""
    users = user_fixture_names(fx)
    for fa in anatomies(fx):
        for loop in fa.get("foreign_loops") or ():
            made = loop.get("created_by_fixture")
            if made and made in users:
                return made
    return None


def reads(fx: Facts) -> set[str]:
    """What the project's code on the failing path refers to, over every failure."""
    return {name for fa in anatomies(fx) for name in fa.get("reads") or ()}
