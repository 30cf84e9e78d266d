"""Planning a flaky test's follow-up experiments, and filing what they showed.

:func:`follow_up` is one test's chain of steps, each chosen from what the earlier
ones showed: (1) the sweep's suspects before it and the test alone; (2) what is
still open: its failing run replayed, a second fresh process; (3) bisection for its
polluter or state-setter; (4) the reproducer, verified k/k. Each run of a step is
filed (:func:`absorb`) under its :class:`~flakehunt.classify.facts.Probe`, in the
tally of :class:`~flakehunt.classify.facts.Facts` that probe feeds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Generator, Mapping
from dataclasses import replace

from flakehunt.bisect import Search, find_cause, find_culprits, find_more, find_together
from flakehunt.classify import culprit as blame
from flakehunt.classify.facts import (
    Facts,
    Probe,
    all_bad,
    brittle,
    cheapest_profile,
    cross_worker,
    is_bad,
    leaked_by,
    lifecycle,
    loop_creators,
    may_have_setter,
    mixed,
    narrowed,
    observations,
    observe,
    order_dependent,
    preceding,
    prime_suspect,
    prune,
    results_for,
    setter_candidates,
    shortest_failure,
    spec_key,
)
from flakehunt.model import Finding, Outcome, Purpose, RunResult, RunSpec, TestResult
from flakehunt.stats import repeat_count

ALONE_COUNT = 8  # at least; more for a rarely failing test (see alone_count)
REPLAYS = 2
VERIFY = 3
#: a flaky test's follow-up runs in a suite of n tests: at most ceil(log2 n) + ALL_RUNS,
#: its culprit search at most ceil(log2 n) + SEARCH_RUNS of them (see :func:`bounds`)
ALL_RUNS = 8
SEARCH_RUNS = 3

#: the causes found for the flaky tests so far, shared by their chains
Board = list[tuple[str, ...]]
#: one test's next follow-up runs, each with what it is for
Step = list[tuple[Probe, RunSpec]]
#: one test's follow-ups: yields a step, is sent that step's runs, in order
Chain = Generator[Step, list[RunResult], None]


def follow_up(f: Finding, fx: Facts, runs: list[RunResult], seed: int,
              command: Callable[[RunSpec], str], board: Board | None = None) -> Chain:
    """The experiments one flaky test needs, each step chosen from what the earlier
    ones showed. No step is ever empty. ``board``: the polluters found for the other
    flaky tests so far (shared by their chains), tried first where this test's own
    runs leave them possible."""
    loop_first = yield from suspects_and_alone(f, fx, seed)
    reproduced = bool(fx.suspect_run[1]) and fx.suspect_run[0] == fx.suspect_run[1]
    if loop_first and reproduced:
        fx.polluters, fx.by_creator = list(fx.suspects), True
    else:
        yield from open_questions(f, fx, seed, loop_first, reproduced)
    yield from culprit_search(fx, runs, reproduced, [] if board is None else board)
    yield from verify(f, fx, command)
    yield from check_culprit(fx)


def suspects_and_alone(f: Finding, fx: Facts, seed: int) -> Generator[Step, list[RunResult],
                                                                        bool]:
    """Step 1: the tests the sweep left under suspicion, then it, in one process; and
    the test alone (a fresh process, repeated inside) - except for an event-loop failure
    whose closed loop's creator is the suspect: its signature says what it is, the run
    who. True when that run went first alone (the alone run then waits for its answer)."""
    run, result = shortest_failure(fx)
    prefix = preceding(run, result)
    suspects, creator = choose_suspects(fx, run, result, prefix)
    step: Step = []
    loop_first = False
    if prefix and len(suspects) < len(prefix):
        fx.suspects = suspects
        step.append((Probe.SUSPECT, bisect_spec(run.spec, [*suspects, f.nodeid])))
        loop_first = creator and lifecycle(fx)
    if not loop_first:
        step.append((Probe.ALONE, alone_spec(f, seed, fx.context.slowdowns)))
    absorb(fx, step, (yield step))
    return loop_first


def choose_suspects(fx: Facts, run: RunResult, result: TestResult,
                    prefix: list[str]) -> tuple[list[str], bool]:
    """The tests before the failure still under suspicion, and whether the one kept is
    the creator of the closed loop the failure met. One failing run is no pattern:
    only a loop's creator is worth a run on its own."""
    serial_fails = sum(1 for rr in fx.bad if rr[0].spec.workers == 0)
    suspects = narrowed(fx, prefix) if run.spec.workers == 0 else prefix
    top = prime_suspect(fx, result, run, suspects) if run.spec.workers == 0 else None
    creator = top is not None and top in loop_creators(result, suspects)[:1]
    if top and (serial_fails > 1 or creator):
        suspects = [top]
    elif serial_fails < 2:
        suspects = prefix
    return suspects, creator


def open_questions(f: Finding, fx: Facts, seed: int, loop_first: bool,
                   reproduced: bool) -> Chain:
    """Step 2, only where a question is left: the loop's creator did not reproduce it
    (the test alone after all); no suspects, or they did not reproduce it, and alone it
    did not show itself nondeterministic (its failing run replayed twice); it failed
    alone once (a second fresh process tells brittle from nondeterministic)."""
    slowdowns = fx.context.slowdowns
    step: Step = [(Probe.ALONE, alone_spec(f, seed, slowdowns))] if loop_first else []
    if not reproduced and not (mixed(fx.alone_first) or mixed(fx.alone_later)):
        step += replays(*shortest_failure(fx))
    if loop_first:  # the alone run first: the next question depends on it
        absorb(fx, step, (yield step))
        step = []
    if fx.alone_first[1] == 1 and fx.alone_first[0] == 1 and may_have_setter(fx):
        step.append((Probe.ALONE, alone_spec(f, seed + 1, slowdowns)))
    if step:
        absorb(fx, step, (yield step))


def culprit_search(fx: Facts, runs: list[RunResult], reproduced: bool, board: Board) -> Chain:
    """Step 3: bisect an order-dependent test for its polluter, a brittle one for its
    setter; what the culprits left changed, from their own records."""
    if fx.polluters:
        fx.leaked = leaked_by(fx.polluters, runs)
    elif order_dependent(fx):
        fx.polluters = yield from polluter_search(fx, reproduced, board)
        fx.leaked = leaked_by(fx.polluters, runs)
    elif brittle(fx):
        # the shortest passing serial run with a test before it that can be its setter
        # (none: it failed after every one of them too, so it has no setter)
        serial = [(len(before), run, cands) for run, r in fx.good if run.spec.workers == 0
                  and (cands := setter_candidates(fx, before := preceding(run, r)))]
        if serial:
            _, run, cands = min(serial, key=lambda entry: entry[0])
            search = find_culprits(fx.nodeid, cands, want_bad=False)
            fx.setters = yield from searching(fx, search, run.spec)
            fx.leaked = leaked_by(fx.setters, runs)
    if not (fx.polluters or fx.setters) and (order_dependent(fx) or brittle(fx)):
        yield from reseed(fx)


def reseed(fx: Facts) -> Chain:
    """Before concluding order dependence or a missing setter when no culprit was found:
    the failing run replayed with other random and hash seeds (the hunt reseeds
    ``random`` per test, so a replay with its own seeds repeats a random delay), as many
    times as the test's bound leaves room for."""
    run, result = shortest_failure(fx)
    base = replay_spec(run, result)
    step: Step = [(Probe.RESEED, replace(base, random_seed=(base.random_seed + 7919 * i)
                                         & 0x7FFFFFFF)) for i in range(1, room(fx, REPLAYS) + 1)]
    if step:  # none: the search took the room (the evidence then shows no reseeded line)
        absorb(fx, step, (yield step))


def polluter_search(fx: Facts, reproduced: bool,
                    board: Board) -> Generator[Step, list[RunResult], list[str]]:
    """Search the tests before the shortest failure for its polluter: the single test, or
    the pair, that agrees with every run so far (:func:`~flakehunt.bisect.find_cause`:
    the sweep's runs and the suspects' run have cleared most); when none does, plain
    bisection (:func:`bisecting`). A failure under xdist is searched in one
    process only once the same tests before it in one process made it fail."""
    run, result = shortest_failure(fx)
    if run.spec.workers and not all_bad(fx.serial_replay):
        return []  # failing only with workers: no single-process effect to bisect
    prefix = preceding(run, result)
    fx.searched = list(prefix)
    named = loop_creators(result, prefix)
    found = yield from searching(fx, find_cause(fx.nodeid, prefix, observations(fx), board,
                                                named), run.spec)
    if found:
        board.append(tuple(found))
    if len(found) == 1:  # other tests that do it too, among those bisection would search
        rest = [t for t in candidates(fx, prefix, reproduced) if t not in found]
        found += yield from searching(fx, find_more(fx.nodeid, rest), run.spec)
    elif found:
        fx.together = True
    return found or (yield from bisecting(fx, run, prefix, reproduced))


def bisecting(fx: Facts, run: RunResult, prefix: list[str],
              reproduced: bool) -> Generator[Step, list[RunResult], list[str]]:
    """The plain bisections: the suspects (reproduced) or the candidates the passing runs
    left, every test before it, then two together."""
    cands = candidates(fx, prefix, reproduced)
    fx.searched = list(cands)
    found = yield from searching(fx, find_culprits(fx.nodeid, cands), run.spec)
    if not found and len(cands) < len(prefix):
        fx.searched = list(prefix)
        found = yield from searching(fx, find_culprits(fx.nodeid, prefix), run.spec)
    if not found and len(fx.searched) > 1:
        # no single polluter: two tests together (one sets the state up, one breaks it)
        found = yield from searching(fx, find_together(fx.nodeid, fx.searched), run.spec)
        fx.together = bool(found)
    return found


def candidates(fx: Facts, prefix: list[str], reproduced: bool) -> list[str]:
    """The sweep's suspects when they reproduced it, else the tests before it the passing
    runs did not clear (and not a lone suspect that did not reproduce it)."""
    if reproduced:
        return fx.suspects
    cleared = fx.suspects if len(fx.suspects) == 1 else []
    return [c for c in prune(fx, prefix) if c not in cleared]


def verify(f: Finding, fx: Facts, command: Callable[[RunSpec], str]) -> Chain:
    """Step 4: the reproducer, verified k/k; runs of the very same experiment made
    earlier count as trials, if none of them passed (k/k needs unbroken trials)."""
    spec = repro_candidate(f, fx)
    tally = list(fx.tried.get(spec_key(spec), [0, 0]))
    if tally[0] < tally[1]:
        tally = [0, 0]
    more = max(0, VERIFY - tally[1])
    if more:
        for done in (yield [(Probe.REPRO, replace(spec, purpose=Purpose.REPRO))] * more):
            if fx.record(done, Probe.REPRO):
                observe(tally, is_bad(done, f.nodeid))
    fx.repro_spec, fx.verified, fx.reproduce = spec, (tally[0], tally[1]), command(spec)


def check_culprit(fx: Facts) -> Chain:
    """Step 5, for a polluter whose reproducer failed k/k: the reproducer once more,
    with one leaked item put back right before the test - the one its failing path
    reads first; if the test still fails, the next (at most RESET_TRIES items). The
    item whose reset made it pass as often as the reproducer failed without it (k of
    k runs: one lucky pass of a test that fails now and then proves nothing) is the
    cause: the culprit is verified."""
    k, n = fx.verified
    repro = fx.repro_spec
    if not (fx.polluters and repro and n and k == n):
        return
    for change, request in blame.reset_requests(fx):
        spec = replace(repro, purpose=Purpose.RESET, count=1, reset=request)
        passed = 0
        while passed < n:
            (done,) = yield [(Probe.RESET, spec)]
            if not fx.record(done, Probe.RESET):
                return
            if is_bad(done, fx.nodeid):
                break
            passed += 1
        if passed < n:
            fx.reset_failed.append(change)
        else:
            fx.reset_item, fx.reset_passed, fx.reset_passes = change, True, passed
            return


def bounds(n: int) -> tuple[int, int]:
    """The follow-up runs one flaky test of a suite of ``n`` tests may make, and its
    culprit search of them: one culprit among n costs ceil(log2 n) runs and a
    confirmation, and the sweep's runs have cleared most candidates before; a search
    that needs more (three tests together, an effect that comes and goes) stops naming
    none - what it showed stays in the evidence, the reproducer replays the order."""
    log2n = math.ceil(math.log2(max(n, 2)))
    return log2n + ALL_RUNS, log2n + SEARCH_RUNS


def at_bound(fx: Facts) -> bool:
    """One more search run would pass the test's bounds: its search's own, or all its
    follow-ups' once room is kept for the reproducer's trials."""
    if not fx.bound:
        return False
    return searched(fx) >= fx.search_bound or sum(fx.spent.values()) + trials_left(fx) >= fx.bound


def searched(fx: Facts) -> int:
    """The culprit search's runs so far (the suspects' run included)."""
    return fx.spent.get(Probe.BISECT.value, 0) + fx.spent.get(Probe.SUSPECT.value, 0)


def trials_left(fx: Facts) -> int:
    """The reproducer's trials still to make at most: the failing order's replays that
    all failed count as trials of it."""
    return VERIFY - min(fx.replay[0], VERIFY) if fx.replay[0] == fx.replay[1] else VERIFY


def room(fx: Facts, wanted: int) -> int:
    """How many of ``wanted`` more runs fit the test's bound, the reproducer's trials kept."""
    if not fx.bound:
        return wanted
    return max(0, min(wanted, fx.bound - sum(fx.spent.values()) - trials_left(fx)))


def searching(fx: Facts, search: Search, spec: RunSpec) -> Generator[Step, list[RunResult],
                                                                       list[str]]:
    """Drive one bisection, a run per step; a step already run (e.g. the suspects, or a
    confirmation) is answered from it. At the test's bound it stops, naming none."""
    try:
        tests = next(search)
        while True:
            step = bisect_spec(spec, tests)
            answer = known(fx, step)
            if answer is None and at_bound(fx):
                fx.search_cut = searched(fx)
                return []
            if answer is None:
                (done,) = yield [(Probe.BISECT, step)]
                if not fx.record(done, Probe.BISECT):
                    return []  # a step that did not run the test answers nothing
                answer = is_bad(done, fx.nodeid)
            tests = search.send(answer)
    except StopIteration as stop:
        found: list[str] = stop.value or []
        return found


# -- filing a step's runs ---------------------------------------------------------------------

def tally_alone(fx: Facts, run: RunResult) -> None:
    """The first execution in the fresh process, then its repetitions."""
    execs = sorted(results_for(run, fx.nodeid), key=lambda r: r.position or 0)
    if execs:
        observe(fx.alone_first, execs[0].outcome.bad)
    for r in execs[1:]:
        observe(fx.alone_later, r.outcome.bad)


def tally_suspect(fx: Facts, run: RunResult) -> None:
    observe(fx.suspect_run, is_bad(run, fx.nodeid))


def tally_serial(fx: Facts, run: RunResult) -> None:
    observe(fx.serial_replay, is_bad(run, fx.nodeid))


def tally_replay(fx: Facts, run: RunResult) -> None:
    """Counted only if the replay ran the same tests before it (xdist may split anew)."""
    if identical_prefix(fx, run, fx.nodeid):
        observe(fx.replay, is_bad(run, fx.nodeid))


def tally_reseed(fx: Facts, run: RunResult) -> None:
    if identical_prefix(fx, run, fx.nodeid):
        observe(fx.reseeded, is_bad(run, fx.nodeid))


def tally_other_order(fx: Facts, run: RunResult) -> None:
    """A test that failed every sweep run, in another order: its outcome, and a pass as
    a passing execution (with the tests that ran before it)."""
    for r in results_for(run, fx.nodeid):
        if r.outcome.bad or r.outcome is Outcome.PASSED:
            observe(fx.other_order, r.outcome.bad)
        if r.outcome is Outcome.PASSED:
            fx.good.append((run, r))


def no_tally(fx: Facts, run: RunResult) -> None:
    """Bisection steps and reproducer trials are kept in ``tried`` only."""


#: which tally of Facts each kind of follow-up run feeds
TALLIES: Mapping[Probe, Callable[[Facts, RunResult], None]] = {
    Probe.ALONE: tally_alone,
    Probe.SUSPECT: tally_suspect,
    Probe.SERIAL: tally_serial,
    Probe.REPLAY: tally_replay,
    Probe.BISECT: no_tally,
    Probe.REPRO: no_tally,
    Probe.REORDER: tally_other_order,
    Probe.RESET: no_tally,
    Probe.RESEED: tally_reseed,
}


def absorb(fx: Facts, step: Step, done: list[RunResult]) -> None:
    """File each follow-up run of a step under what it was run for; a run that did not
    run the test (:func:`~flakehunt.classify.facts.missed`) feeds no tally."""
    for (probe, _), run in zip(step, done, strict=True):
        if fx.record(run, probe):
            TALLIES[probe](fx, run)


def known(fx: Facts, spec: RunSpec) -> bool | None:
    """The outcome of an experiment already run, if every run of it agreed."""
    bad, n = fx.tried.get(spec_key(spec), (0, 0))
    if n and bad in (0, n):
        return bad == n
    return None


def identical_prefix(fx: Facts, replay: RunResult, nodeid: str) -> bool:
    """Did the replay run the same tests before the victim in its process? (xdist
    hands tests to workers as they free up: the same seed need not give the same split)."""
    if replay.spec.workers == 0:
        return True
    original = preceding(*shortest_failure(fx))
    mine = results_for(replay, nodeid)
    return bool(mine) and preceding(replay, mine[0]) == original


# -- the specs --------------------------------------------------------------------------------

def alone_count(rate: float) -> int:
    """Repetitions of the test alone in one process: enough to see a rarely failing
    test fail (so this run can be its verified reproducer), never fewer than ALONE_COUNT."""
    return max(ALONE_COUNT, repeat_count(rate / 2))


def alone_spec(f: Finding, seed: int, slowdowns: Mapping[str, float]) -> RunSpec:
    """The test alone in a fresh process, repeated inside, under the profile where a
    failure is cheapest to see, as often as its rate there needs."""
    profile, rate = cheapest_profile(f, slowdowns)
    return RunSpec(index=0, purpose=Purpose.ISOLATE, tests=(f.nodeid,), count=alone_count(rate),
                   profile=profile, random_seed=seed & 0x7FFFFFFF)


def bisect_spec(spec: RunSpec, tests: list[str]) -> RunSpec:
    """``tests`` in this order, in one process, otherwise as ``spec`` ran."""
    return replace(spec, purpose=Purpose.BISECT, order="declared", tests=tuple(tests), workers=0,
                   split=None)


def recorded_split(run: RunResult) -> str:
    """Which xdist worker ran which tests, in order: to replay the split exactly."""
    split: dict[str, list[str]] = {}
    for r in sorted(run.results, key=lambda r: (r.worker, r.position or 0)):
        if r.worker != "main":
            split.setdefault(r.worker, []).append(r.nodeid)
    return json.dumps(split, separators=(",", ":"))


def replay_spec(run: RunResult, result: TestResult) -> RunSpec:
    """The failing run again: the same tests before it (serial), or the same split."""
    if run.spec.workers == 0:
        return replace(run.spec, purpose=Purpose.REPLAY,
                       tests=(*preceding(run, result), result.nodeid), order="declared")
    return replace(run.spec, purpose=Purpose.REPLAY, split=recorded_split(run))


def replays(run: RunResult, result: TestResult) -> Step:
    """The failing run replayed REPLAYS times; a failure under xdist also with the same
    tests before it in one process, to tell a cross-worker race from an order effect."""
    out: Step = []
    for _ in range(REPLAYS):
        out.append((Probe.REPLAY, replay_spec(run, result)))
        if run.spec.workers:
            out.append((Probe.SERIAL, replace(
                run.spec, purpose=Purpose.REPLAY, workers=0, order="declared", split=None,
                tests=(*preceding(run, result), result.nodeid))))
    return out


def repro_candidate(f: Finding, fx: Facts) -> RunSpec:
    """The shortest command that should make the test fail, from what was proven."""
    run, result = shortest_failure(fx)
    if fx.polluters:
        return replace(run.spec, purpose=Purpose.REPRO, order="declared", workers=0,
                       tests=(*fx.polluters, f.nodeid))
    if fx.setters:  # a brittle test fails alone: the reproducer is the test alone
        return replace(run.spec, purpose=Purpose.REPRO, order="declared", workers=0,
                       tests=(f.nodeid,))
    if cross_worker(fx):
        return replace(replay_spec(run, result), purpose=Purpose.REPRO)
    if order_dependent(fx) and all_bad(fx.suspect_run) and not fx.replay[1]:
        # shown by the sweep's suspects alone: they are the shorter reproducer
        return bisect_spec(run.spec, [*fx.suspects, f.nodeid])
    if order_dependent(fx) and not all_bad(fx.replay):
        # under xdist, the same tests before it in one process made it fail
        return replace(bisect_spec(run.spec, [*preceding(run, result), f.nodeid]),
                       purpose=Purpose.REPRO)
    if order_dependent(fx) or brittle(fx):
        return replay_spec(run, result)
    return repeated_alone(f, fx, run)


def repeated_alone(f: Finding, fx: Facts, run: RunResult) -> RunSpec:
    """A nondeterministic test's reproducer: repeated as often as its rate needs."""
    seen = fx.alone_first[0] + fx.alone_later[0]
    total = fx.alone_first[1] + fx.alone_later[1]
    # half the rate measured: each of the k trials should fail, not 95% of them
    repeats = repeat_count(max(seen / total if total else 0, f.failure_rate / 2) / 2)
    # the test alone, repeated, failed already: that run is its reproducer, unless it
    # repeats the test far more often than the rate now measured needs
    failed_alone = [k for k, (bad, _) in fx.tried.items()
                    if bad and k.tests == (f.nodeid,) and 1 < k.count <= 2 * repeats]
    if failed_alone:
        return failed_alone[0]  # seen failing already: verify it
    if run.spec.workers:
        return replace(run.spec, purpose=Purpose.REPRO, count=repeats // 5 or 1)
    return replace(run.spec, purpose=Purpose.REPRO, order="declared", tests=(f.nodeid,),
                   count=repeats)
