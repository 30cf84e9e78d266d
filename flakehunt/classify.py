"""Say why a flaky test is flaky: loop-closed, state-leak, race or unknown.

Two halves:
- :func:`experiment` runs the follow-ups a verdict needs (the test alone, its
  failing order replayed, polluter/state-setter bisection, the reproducer
  verified k/k), reusing what the sweep already ran;
- :func:`decide` is pure: facts in, category + fixture + evidence + hint out,
  an ordered table of small rules. Lifecycle signatures come first: they are
  themselves order-dependent.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

from flakehunt import signatures
from flakehunt.bisect import Search, find_culprits
from flakehunt.model import Finding, Outcome, Purpose, RunResult, RunSpec, TestResult, Verdict

ALONE_COUNT = 8  # at least; more for a rarely failing test (see alone_count)
REPLAYS = 2
VERIFY = 3


@dataclass
class Facts:
    """Everything measured about one flaky test."""

    nodeid: str
    bad: list[tuple[RunResult, TestResult]] = field(default_factory=list)
    good: list[tuple[RunResult, TestResult]] = field(default_factory=list)
    #: first execution in a fresh process, alone: [bad, total]
    alone_first: list[int] = field(default_factory=lambda: [0, 0])
    #: later repetitions in the same process (pytest-repeat): [bad, total]
    alone_later: list[int] = field(default_factory=lambda: [0, 0])
    #: the failing run replayed under identical conditions: [bad, total]
    replay: list[int] = field(default_factory=lambda: [0, 0])
    #: for a failure under xdist: the same tests before it, in one process: [bad, total]
    serial_replay: list[int] = field(default_factory=lambda: [0, 0])
    #: the sweep's suspects (see :func:`narrowed`) run before it, in one process: [bad, total]
    suspect_run: list[int] = field(default_factory=lambda: [0, 0])
    suspects: list[str] = field(default_factory=list)
    polluters: list[str] = field(default_factory=list)
    #: the polluter is the test that created the closed loop the failure met, and its
    #: run before this test reproduced the failure (no bisection was needed)
    by_creator: bool = False
    setters: list[str] = field(default_factory=list)
    #: state a polluter changed and did not restore, from its own records
    leaked: list[dict] = field(default_factory=list)
    reproduce: str | None = None
    verified: tuple[int, int] = (0, 0)
    repro_spec: RunSpec | None = None
    #: facts about the whole suite, from collection (e.g. dead ``event_loop`` fixtures)
    suite: dict = field(default_factory=dict)
    #: every follow-up run of this test by what it ran (spec without index/purpose): [bad, n]
    tried: dict[RunSpec, list[int]] = field(default_factory=dict)

    def record(self, run: RunResult) -> None:
        cell = self.tried.setdefault(spec_key(run.spec), [0, 0])
        cell[0] += is_bad(run, self.nodeid)
        cell[1] += 1


def spec_key(spec: RunSpec) -> RunSpec:
    """What makes two runs the same experiment: all but their index and purpose."""
    return replace(spec, index=0, purpose=Purpose.NONE)


# -- helpers over results -------------------------------------------------------------------

def results_for(run: RunResult, nodeid: str) -> list[TestResult]:
    return [r for r in run.results if r.nodeid == nodeid]


def is_bad(run: RunResult, nodeid: str) -> bool:
    return any(r.outcome.bad for r in results_for(run, nodeid))


def preceding(run: RunResult, result: TestResult) -> list[str]:
    """Tests that ran before ``result`` in the same process, in order."""
    if result.position is None:
        return []
    same = [r for r in run.results if r.worker == result.worker and r.position is not None
            and r.position < result.position]
    return [r.nodeid for r in sorted(same, key=lambda r: r.position)]


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    d = 1 + z * z / n
    c = p + z * z / (2 * n)
    m = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, (c - m) / d), min(1.0, (c + m) / d))


def failures(facts: Facts):
    return [r.failure for _, r in facts.bad if r.failure is not None]


def user_fixtures(result: TestResult) -> list[dict]:
    return [f for f in result.evidence.get("fixtures", []) if f.get("user")]


# -- the experiments ------------------------------------------------------------------------

class Runs(Protocol):
    """What classification needs of a hunt (flakehunt.hunt.Hunt is one): run steps of
    specs, build replay commands, say what it is doing."""

    def stream(self, steps: dict[str, list[RunSpec]],
               then: Callable[[str, list[RunResult]], list[RunSpec]]) -> None:
        """Run each key's specs; once all of a key's runs are done, ``then(key, runs)``
        (runs in spec order) gives its next specs, none when it is finished."""
        ...

    def command(self, spec: RunSpec) -> str: ...
    def note(self, text: str) -> None: ...


def gather(finding: Finding, runs: list[RunResult]) -> Facts:
    facts = Facts(finding.nodeid)
    for run in runs:
        if run.spec.purpose is not Purpose.SWEEP:
            continue
        for r in results_for(run, finding.nodeid):
            if r.outcome.bad:
                facts.bad.append((run, r))
            elif r.outcome is Outcome.PASSED:
                facts.good.append((run, r))
            if r.position == 1 and (r.outcome.bad or r.outcome is Outcome.PASSED):
                # first in a fresh process: as good as alone, for free
                facts.alone_first[0] += r.outcome.bad
                facts.alone_first[1] += 1
    return facts


def cheapest_profile(finding: Finding) -> tuple[str, float]:
    """The profile where a failure is cheapest to see again, with its failure rate:
    the least slowdown per failure (a test failing 1/3 under ``none`` and 2/3 under
    ``quota-25``, four times slower, is watched under ``none``)."""
    from flakehunt.profiles import PROFILES

    scored = [(getattr(PROFILES.get(name), "slowdown", 1.0) * runs / bad, name != "none",
               name, bad / runs)
              for name, (bad, runs) in finding.breakdown.get("profile", {}).items()
              if bad and runs]
    if not scored:
        return "none", finding.failure_rate
    *_, name, rate = min(scored)  # on a tie the machine as it is
    return name, rate


def shortest_failure(facts: Facts) -> tuple[RunResult, TestResult]:
    """The failing execution cheapest to replay: serial runs first, then profiles
    that slow the run down least, then the fewest tests before it."""
    from flakehunt.profiles import PROFILES

    def cost(rr: tuple[RunResult, TestResult]) -> tuple:
        profile = PROFILES.get(rr[0].spec.profile)
        return (rr[0].spec.workers > 0, getattr(profile, "slowdown", 1.0),
                len(preceding(*rr)), rr[0].spec.index)

    return min(facts.bad, key=cost)


def recorded_split(run: RunResult) -> str:
    """Which xdist worker ran which tests, in order: to replay the split exactly."""
    split: dict[str, list[str]] = {}
    for r in sorted(run.results, key=lambda r: (r.worker, r.position or 0)):
        if r.worker != "main":
            split.setdefault(r.worker, []).append(r.nodeid)
    return json.dumps(split, separators=(",", ":"))


def replay_spec(run: RunResult, result: TestResult) -> RunSpec:
    if run.spec.workers == 0:
        return replace(run.spec, purpose=Purpose.REPLAY,
                       tests=(*preceding(run, result), result.nodeid), order="declared")
    return replace(run.spec, purpose=Purpose.REPLAY, split=recorded_split(run))


def alone_count(rate: float) -> int:
    """Repetitions of the test alone in one process: enough to see a rarely failing
    test fail (so this run can be its verified reproducer), never fewer than ALONE_COUNT."""
    return max(ALONE_COUNT, repeat_count(rate / 2))


#: one test's next follow-up runs, each with what it is for ("alone", "suspect", ...)
Step = list[tuple[str, RunSpec]]
#: one test's follow-ups: yields a step, is sent that step's runs, in order
Chain = Generator[Step, list[RunResult], None]


@dataclass(frozen=True)
class Context:
    """What classification knows beyond the runs, handed in as data: facts of the
    suite (from collection) and of the profiles (how much each slows a run down)."""

    #: project fixtures named ``event_loop``, dead since pytest-asyncio 1.0
    dead_event_loop: tuple[str, ...] = ()
    #: profile name -> roughly how much longer a run takes under it (absent: 1.0)
    slowdowns: Mapping[str, float] = field(default_factory=dict)


def experiment(findings: list[Finding], runs: list[RunResult], runner: Runs,
               seed: int, context: Context) -> dict[str, Facts]:
    """Every flaky test's follow-ups as its own chain of steps; the runner advances a
    chain as soon as its own runs are done, so one test's bisection overlaps another's
    reproducer check instead of waiting for the slowest test of a round."""
    flaky = [f for f in findings if f.verdict is Verdict.FLAKY]
    facts = {f.nodeid: gather(f, runs) for f in flaky}
    for fx in facts.values():
        fx.suite = {"dead_event_loop": list(context.dead_event_loop)}
    chains = {f.nodeid: follow_up(f, facts[f.nodeid], runs, seed + 7919 * i, runner.command)
              for i, f in enumerate(flaky)}
    first: dict[str, list[RunSpec]] = {}
    for key, chain in chains.items():
        step = next(chain, None)
        if step:
            first[key] = [spec for _, spec in step]

    def then(key: str, done: list[RunResult]) -> list[RunSpec]:
        try:
            return [spec for _, spec in chains[key].send(done)]
        except StopIteration:
            return []

    if first:
        runner.note(f"following up {len(first)} flaky test(s): alone, suspects, "
                    "bisection, reproducers")
        runner.stream(first, then)
    return facts


def follow_up(f: Finding, fx: Facts, runs: list[RunResult], seed: int,
              command: Callable[[RunSpec], str]) -> Chain:
    """The experiments one flaky test needs, each step chosen from what the earlier
    ones showed. No step is ever empty."""
    nodeid = f.nodeid
    # 1. the tests the sweep left under suspicion, then it, in one process; and the test
    # alone (a fresh process, repeated inside) - except for an event-loop failure whose
    # closed loop's creator is the suspect: its signature says what it is, the run who
    run, result = shortest_failure(fx)
    prefix = preceding(run, result)
    # one failing run is no pattern: only a loop's creator is worth a run on its own
    serial_fails = sum(1 for rr in fx.bad if rr[0].spec.workers == 0)
    suspects = narrowed(fx, prefix) if run.spec.workers == 0 else prefix
    top = prime_suspect(fx, result, run, suspects) if run.spec.workers == 0 else None
    creator = top is not None and top == loop_creator(result, suspects)
    if top and (serial_fails > 1 or creator):
        suspects = [top]
    elif serial_fails < 2:
        suspects = prefix
    step: Step = []
    loop_first = False
    if prefix and len(suspects) < len(prefix):
        fx.suspects = suspects
        step.append(("suspect", bisect_spec(run.spec, [*suspects, nodeid])))
        loop_first = creator and lifecycle(fx)
    if not loop_first:
        step.append(("alone", alone_spec(f, seed)))
    absorb(fx, step, (yield step))
    # 2. only where a question is left: the loop's creator did not reproduce it (the
    # test alone after all); no suspects, or they did not reproduce it, and alone it did
    # not show itself nondeterministic (its failing run replayed twice); it failed alone
    # once (a second fresh process tells brittle from nondeterministic)
    reproduced = bool(fx.suspect_run[1]) and fx.suspect_run[0] == fx.suspect_run[1]
    if loop_first and reproduced:
        fx.polluters, fx.by_creator = list(fx.suspects), True
    else:
        step = [("alone", alone_spec(f, seed))] if loop_first else []
        if not reproduced and not (mixed(fx.alone_first) or mixed(fx.alone_later)):
            step += replays(*shortest_failure(fx))
        if loop_first:  # the alone run first: the next question depends on it
            absorb(fx, step, (yield step))
            step = []
        if fx.alone_first[1] == 1 and fx.alone_first[0] == 1 and may_have_setter(fx):
            step.append(("alone", alone_spec(f, seed + 1)))
        if step:
            absorb(fx, step, (yield step))
    # 3. bisect an order-dependent test for its polluter, a brittle one for its setter
    if fx.polluters:
        fx.leaked = leaked_by(fx.polluters, runs)
    elif order_dependent(fx):
        run, result = shortest_failure(fx)
        if run.spec.workers == 0:  # failing only with workers: no single-process effect
            cleared = fx.suspects if len(fx.suspects) == 1 and not reproduced else []
            cands = fx.suspects if reproduced else [
                c for c in prune(fx, preceding(run, result)) if c not in cleared]
            fx.polluters = yield from searching(fx, find_culprits(nodeid, cands), run.spec)
            fx.leaked = leaked_by(fx.polluters, runs)
    elif brittle(fx):
        # the shortest passing serial run with a test before it that can be its setter
        # (none: it failed after every one of them too, so it has no setter)
        serial = [(len(before), run, cands) for run, r in fx.good if run.spec.workers == 0
                  and (cands := setter_candidates(fx, before := preceding(run, r)))]
        if serial:
            _, run, cands = min(serial, key=lambda entry: entry[0])
            search = find_culprits(nodeid, cands, want_bad=False)
            fx.setters = yield from searching(fx, search, run.spec)
            fx.leaked = leaked_by(fx.setters, runs)
    # 4. the reproducer, verified k/k; runs of the very same experiment made earlier
    # count as trials, if none of them passed (k/k needs unbroken trials)
    spec = repro_candidate(f, fx)
    tally = list(fx.tried.get(spec_key(spec), [0, 0]))
    if tally[0] < tally[1]:
        tally = [0, 0]
    more = max(0, VERIFY - tally[1])
    if more:
        for done in (yield [("repro", replace(spec, purpose=Purpose.REPRO))] * more):
            fx.record(done)
            tally[0] += is_bad(done, nodeid)
            tally[1] += 1
    fx.repro_spec, fx.verified, fx.reproduce = spec, (tally[0], tally[1]), command(spec)


def searching(fx: Facts, search: Search, spec: RunSpec) -> Generator[Step, list[RunResult],
                                                                       list[str]]:
    """Drive one bisection, a run per step; a step already run (e.g. the suspects, or a
    confirmation) is answered from it."""
    try:
        tests = next(search)
        while True:
            step = bisect_spec(spec, tests)
            answer = known(fx, step)
            if answer is None:
                (done,) = yield [("bisect", step)]
                fx.record(done)
                answer = is_bad(done, fx.nodeid)
            tests = search.send(answer)
    except StopIteration as stop:
        return stop.value or []


def alone_spec(f: Finding, seed: int) -> RunSpec:
    """The test alone in a fresh process, repeated inside, under the profile where a
    failure is cheapest to see, as often as its rate there needs."""
    profile, rate = cheapest_profile(f)
    return RunSpec(index=0, purpose=Purpose.ISOLATE, tests=(f.nodeid,), count=alone_count(rate),
                   profile=profile, random_seed=seed & 0x7FFFFFFF)


def bisect_spec(spec: RunSpec, tests: list[str]) -> RunSpec:
    """``tests`` in this order, in one process, otherwise as ``spec`` ran."""
    return replace(spec, purpose=Purpose.BISECT, order="declared", tests=tuple(tests), workers=0,
                   split=None)


def replays(run: RunResult, result: TestResult) -> Step:
    """The failing run replayed REPLAYS times; a failure under xdist also with the same
    tests before it in one process, to tell a cross-worker race from an order effect."""
    out: Step = []
    for _ in range(REPLAYS):
        out.append(("replay", replay_spec(run, result)))
        if run.spec.workers:
            out.append(("serial", replace(
                run.spec, purpose=Purpose.REPLAY, workers=0, order="declared", split=None,
                tests=(*preceding(run, result), result.nodeid))))
    return out


def absorb(fx: Facts, step: Step, done: list[RunResult]) -> None:
    """File each follow-up run of a step under what it was run for."""
    nodeid = fx.nodeid
    for (kind, _), run in zip(step, done, strict=True):
        fx.record(run)
        execs = sorted(results_for(run, nodeid), key=lambda r: r.position or 0)
        if kind == "alone":
            if execs:
                fx.alone_first[0] += execs[0].outcome.bad
                fx.alone_first[1] += 1
            for r in execs[1:]:
                fx.alone_later[0] += r.outcome.bad
                fx.alone_later[1] += 1
        elif kind == "serial":
            fx.serial_replay[0] += is_bad(run, nodeid)
            fx.serial_replay[1] += 1
        elif kind == "suspect":
            fx.suspect_run[0] += is_bad(run, nodeid)
            fx.suspect_run[1] += 1
        elif identical_prefix(fx, run, nodeid):
            fx.replay[0] += is_bad(run, nodeid)
            fx.replay[1] += 1


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
    mine = [r for r in results_for(replay, nodeid)]
    return bool(mine) and preceding(replay, mine[0]) == original


def narrowed(fx: Facts, candidates: list[str]) -> list[str]:
    """The candidates the sweep has not cleared: :func:`prune`, then only those that
    preceded the victim in every failing run (with one deterministic polluter, it did).
    Several alternative polluters can empty the intersection: then the pruned list."""
    kept = prune(fx, candidates)
    prefixes = [set(preceding(run, r)) for run, r in fx.bad]
    common = [c for c in kept if all(c in p for p in prefixes)]
    return common or kept


def prime_suspect(fx: Facts, result: TestResult, run: RunResult,
                  candidates: list[str]) -> str | None:
    """The candidate the failing run's own records single out: the test whose event
    loop, now closed, the failure met; else the one candidate that left changed state
    under an object a fixture of the victim hands it."""
    made = loop_creator(result, candidates)
    if made:
        return made
    handed = {f["global"] for f in user_fixtures(result) if f.get("global")}
    changed = [r.nodeid for r in run.results if r.nodeid in candidates
               and any(c.get("what", "").startswith(g + ".") or c.get("what") == g
                       for c in r.evidence.get("state") or () for g in handed)]
    return changed[0] if len(changed) == 1 else None


def lifecycle(fx: Facts) -> bool:
    """Every failure carries an event-loop lifecycle signature."""
    fails = failures(fx)
    return bool(fails) and all(signatures.match(signatures.LIFECYCLE, x) for x in fails)


def loop_creator(result: TestResult, candidates: list[str]) -> str | None:
    """The candidate that created a closed event loop the failure met."""
    for fa in result.evidence.get("failure_anatomy") or ():
        for loop in fa.get("loops") or ():
            made = loop.get("created_by_test")
            if loop.get("closed") and made in candidates:
                return made
    return None


def prune(fx: Facts, candidates: list[str]) -> list[str]:
    """Drop tests that ran before the victim in a run where it passed: with one
    deterministic polluter, none of them can be it. Fall back to all if none is left."""
    innocent: set[str] = set()
    for run, result in fx.good:
        innocent.update(preceding(run, result))
    kept = [c for c in candidates if c not in innocent]
    return kept or candidates


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


def leaked_by(culprits: list[str], runs: list[RunResult]) -> list[dict]:
    out: list[dict] = []
    for run in runs:
        for r in run.results:
            if r.nodeid in culprits and r.evidence.get("state"):
                for change in r.evidence["state"]:
                    entry = {**change, "by": r.nodeid}
                    if entry not in out:
                        out.append(entry)
        if out:
            break
    return out


def order_dependent(fx: Facts) -> bool:
    """Never fails alone, always fails when its failing order (or the part of it the
    sweep left under suspicion) is replayed."""
    replayed = fx.replay if fx.replay[1] else fx.suspect_run
    return (fx.alone_first[1] > 0 and fx.alone_first[0] == 0 and not mixed(fx.alone_later)
            and replayed[1] > 0 and replayed[0] == replayed[1])


def mixed(cell: list[int]) -> bool:
    return 0 < cell[0] < cell[1]


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
    mixed_alone = mixed(fx.alone_first) or mixed(fx.alone_later)
    replay_differs = fx.replay[1] > 0 and fx.replay[0] < fx.replay[1]
    return mixed_alone or replay_differs


def cross_worker(fx: Facts) -> bool:
    """Fails when xdist workers run beside it, passes with the same tests in one process."""
    return (fx.serial_replay[1] > 0 and fx.serial_replay[0] == 0 and fx.replay[0] > 0
            and fx.alone_first[0] == 0)


def repeat_count(rate: float) -> int:
    """Repetitions so that at least one failure is ~95% likely at ``rate``."""
    if rate <= 0:
        return 50
    return max(5, min(100, math.ceil(math.log(0.05) / math.log(max(1e-9, 1 - rate)))))


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
    if order_dependent(fx) and not fx.replay[1]:
        # shown by the sweep's suspects alone: they are the shorter reproducer
        return bisect_spec(run.spec, [*fx.suspects, f.nodeid])
    if order_dependent(fx) or brittle(fx):
        return replay_spec(run, result)
    seen = fx.alone_first[0] + fx.alone_later[0]
    total = fx.alone_first[1] + fx.alone_later[1]
    # half the rate measured: each of the k trials should fail, not 95% of them
    count = repeat_count(max(seen / total if total else 0, f.failure_rate / 2) / 2)
    # the test alone, repeated, failed already: that run is its reproducer, unless it
    # repeats the test far more often than the rate now measured needs
    failed_alone = [k for k, (bad, _) in fx.tried.items()
                    if bad and k.tests == (f.nodeid,) and 1 < k.count <= 2 * count]
    if failed_alone:
        return failed_alone[0]  # seen failing already: verify it
    if run.spec.workers:
        return replace(run.spec, purpose=Purpose.REPRO, count=count // 5 or 1)
    return replace(run.spec, purpose=Purpose.REPRO, order="declared", tests=(f.nodeid,),
                   count=count)


# -- the decision (pure) --------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    category: str
    fixture: str | None
    evidence: tuple[str, ...]
    hint: str
    polluter: tuple[str, ...] = ()
    problem: str | None = None


def asyncio_logs(fx: Facts) -> list[str]:
    seen: list[str] = []
    for _, r in fx.bad:
        for m in r.evidence.get("asyncio_log") or ():
            if m not in seen:
                seen.append(m)
    return [f"asyncio logged during a failing run: {m}" for m in seen[:3]]


def wide_teardown(fx: Facts) -> tuple[str, str] | None:
    """(fixture, scope) when every failure is a teardown error raised by one fixture of
    a scope wider than the test."""
    found: set[tuple[str, str]] = set()
    for _, r in fx.bad:
        anat = r.evidence.get("failure_anatomy") or []
        scopes = {f["name"]: f.get("scope") for f in r.evidence.get("fixtures", [])}
        hit = [(a["raised_in_fixture"], scopes.get(a["raised_in_fixture"])) for a in anat
               if a.get("phase") == "teardown" and a.get("raised_in_fixture")]
        if not hit or any(a.get("phase") != "teardown" for a in anat):
            return None
        name, scope = hit[0]
        if scope in (None, "function"):
            return None
        found.add((name, scope))
    return found.pop() if len(found) == 1 else None


def q(name: str | None) -> str:
    return f"`{name}`" if name else "none"


def loop_story(fx: Facts) -> tuple[str | None, list[str], str]:
    """Which fixture keeps the closed/foreign loop, in words."""
    lines: list[str] = []
    fixture = None
    hint = ""
    users = user_fixture_names(fx)
    for _, r in fx.bad:
        for fa in r.evidence.get("failure_anatomy", []):
            holders = sorted(fa.get("holders", []), key=lambda h: h.get("fixture") not in users)
            for h in holders:
                loop = next((lp for lp in fa.get("loops", []) if lp["label"] == h["loop"]), {})
                state = "closed" if loop.get("closed") else "still open"
                made = loop.get("created_by_test")
                origin = (f"created for {made}" if made and made != fx.nodeid
                          else "created in this test" if made else "of unknown origin")
                by = loop.get("created_by_fixture")
                lines.append(
                    f"{h['object']}.{h['attribute']} holds {loop.get('label', 'a loop')} "
                    f"({origin}{' by `' + by + '`' if by else ''}, {state}); met as "
                    f"`{h['local']}`" + (f", handed to the test by fixture `{h['fixture']}`"
                                          f"{h['fixture_path'] and ' (' + h['fixture_path'] + ')'}"
                                          if h.get("fixture") else ""))
                if fixture is None and h.get("fixture"):
                    fixture = h["fixture"]
                    hint = (f"don't keep the event loop in {h['object']}.{h['attribute']}: "
                            f"look it up with asyncio.get_running_loop() when needed, or reset "
                            f"it per test in `{h['fixture']}`; if the tests must share one loop, "
                            f"mark them @pytest.mark.asyncio(loop_scope=\"module\") and give the "
                            f"fixtures the same loop_scope")
            if lines:
                return fixture, lines, hint
    for _, r in fx.bad:
        for fa in r.evidence.get("failure_anatomy", []):
            for loop in fa.get("foreign_loops", []):
                lines.append(f"failing frames use {loop['label']} "
                             f"({'closed' if loop.get('closed') else 'open'}), created for "
                             f"{loop.get('created_by_test') or '?'} by "
                             f"{q(loop.get('created_by_fixture'))}; met as {loop.get('met_as')}")
                break
    wide = wide_cached_fixtures(fx)
    if wide:
        f = wide[0]
        fixture = fixture or f["name"]
        lines.append(f"{f['scope']}-scoped `{f['name']}` ({f.get('loc', '?')}) was created "
                     f"for {f.get('cached_from') or 'an earlier test'} and reused here; tests "
                     f"run on their own loops")
        hint = hint or (f"give `{f['name']}` a loop_scope equal to its scope "
                        f"(@pytest_asyncio.fixture(scope=\"{f['scope']}\", "
                        f"loop_scope=\"{f['scope']}\")) and run its tests with "
                        f"@pytest.mark.asyncio(loop_scope=\"{f['scope']}\"), or make it "
                        f"function-scoped so it is recreated per loop")
    if fixture is None:
        fixture = involved_fixture(fx) or raised_in(fx)
    return fixture, lines, hint or "create loop-bound objects inside the loop that uses them"


def wide_cached_fixtures(fx: Facts) -> list[dict]:
    if not fx.bad:
        return []
    return [f for f in user_fixtures(fx.bad[0][1])
            if f.get("scope") != "function" and not f.get("fresh")]


def involved_fixture(fx: Facts) -> str | None:
    for _, r in fx.bad:
        for fa in r.evidence.get("failure_anatomy", []):
            inv = fa.get("involved") or {}
            if inv:
                return next(iter(inv))
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
    for _, r in fx.bad:
        for fa in r.evidence.get("failure_anatomy", []):
            if fa.get("raised_in_fixture"):
                return fa["raised_in_fixture"]
    return None


def user_fixture_names(fx: Facts) -> set[str]:
    return {f["name"] for _, r in fx.bad + fx.good for f in user_fixtures(r)}


def anatomies(fx: Facts):
    for _, r in fx.bad:
        yield from r.evidence.get("failure_anatomy", [])


def background_fixture(fx: Facts) -> tuple[str | None, list[str]]:
    """The fixture whose background task or thread was alive when the test failed."""
    users = user_fixture_names(fx)
    for fa in anatomies(fx):
        tasks = fa.get("tasks_from_fixtures") or []
        tasks = sorted(tasks, key=lambda t: (not t.get("user"), t["fixture"] not in users,
                                             t.get("test") != fx.nodeid))
        if tasks:
            t = tasks[0]
            return t["fixture"], [f"task {t['task']} created while `{t['fixture']}` was set up "
                                  f"was still pending when the test failed"]
    for fa in anatomies(fx):
        threads = fa.get("threads_from_fixtures") or []
        named = [(t.rsplit("`", 2)[-2], t) for t in threads if "`" in t]
        named.sort(key=lambda nt: nt[0] not in users)
        if named:
            return named[0][0], [f"background thread alive at the failure: {named[0][1]}"]
    return None, []


def leak_fixture(fx: Facts) -> tuple[str | None, list[str]]:
    """The test's fixture that hands over the object the polluter changed."""
    lines = []
    for change in fx.leaked[:4]:
        if change.get("kind") == "env":
            lines.append(f"{change['by']} changed os.environ: {change['change']}")
        else:
            lines.append(f"{change['what']}: {change.get('before')} -> {change.get('after')} "
                         f"after {change['by']} (not restored)")
    results = [r for _, r in fx.bad] + [r for _, r in fx.good]
    for r in results:
        for f in user_fixtures(r):
            g = f.get("global")
            if g and any(c.get("what", "").startswith(g) for c in fx.leaked):
                lines.append(f"fixture `{f['name']}` ({f.get('loc', '?')}) hands the test {g}")
                return f["name"], lines
    return involved_fixture(fx) or raised_in(fx) or on_failing_line(fx), lines


def sensitivity(f: Finding) -> list[str]:
    out = []
    for dim in ("profile", "workers", "order"):
        cells = f.breakdown.get(dim, {})
        if len(cells) > 1:
            parts = ", ".join(f"{v} {b}/{n}" for v, (b, n) in sorted(cells.items()) if n)
            out.append(f"failures by {dim}: {parts}")
    return out


def decide(f: Finding, fx: Facts) -> Decision:
    k, n = fx.verified
    if (fx.polluters or fx.setters) and n and k < n:
        # the culprit did not reproduce k/k: not proven, so no culprit is named
        fx = replace(fx, polluters=[], setters=[])
    fails = failures(fx)
    life = next((s for s in map(lambda x: signatures.match(signatures.LIFECYCLE, x), fails)
                 if s), None)
    base = [f"alone: failed {fx.alone_first[0]}/{fx.alone_first[1]} first runs in a fresh "
            f"process, {fx.alone_later[0]}/{fx.alone_later[1]} repeats"
            ] if fx.alone_first[1] else []
    if fx.suspect_run[1]:
        base.append(f"after the {len(fx.suspects)} test(s) the sweep left under suspicion "
                    f"({', '.join(fx.suspects[:3])}{', ...' if len(fx.suspects) > 3 else ''}): "
                    f"failed {fx.suspect_run[0]}/{fx.suspect_run[1]}")
    if fx.replay[1]:
        base.append(f"failing order replayed: failed {fx.replay[0]}/{fx.replay[1]}")
    how = ("it created the closed event loop the failure met; run first, it made the "
           "test fail" if fx.by_creator else "bisected; passes alone")
    order_line = [f"fails after {', '.join(fx.polluters)} ({how})"] if fx.polluters else []
    if self_polluting(fx):
        order_line.append("repeated in one process it fails from its 2nd run on: it leaves "
                          "the state behind itself too")
    logs = asyncio_logs(fx)
    wide = wide_teardown(fx)
    if wide:
        name, scope = wide
        lines = [f"every failure is an error in the teardown of {scope}-scoped `{name}`: it "
                 f"lands on whichever test ran last in its scope, so this test is not the "
                 f"culprit"]
        if life:
            return Decision("loop-closed", name, (
                f"signature: {life.pattern.pattern!r} - {life.meaning}", *lines, *logs, *base),
                f"close what `{name}` holds on the loop it was made on: give it "
                f"loop_scope=\"{scope}\" (@pytest_asyncio.fixture(scope=\"{scope}\", "
                f"loop_scope=\"{scope}\"))", tuple(fx.polluters), "fixture-teardown")
        return Decision("unknown", name, (*lines, *logs, *base),
                        f"fix the teardown of `{name}`", (), "fixture-teardown")
    if life:
        fixture, lines, hint = loop_story(fx)
        dead = fx.suite.get("dead_event_loop") or []
        if dead:
            lines.append(f"fixture event_loop at {', '.join(dead)} does nothing on "
                         f"pytest-asyncio >= 1.0 (which removed the fixture it overrode): "
                         f"it does not share a loop, and nothing warns")
            hint += "; delete the dead event_loop fixture"
        return Decision("loop-closed", fixture,
                        (f"signature: {life.pattern.pattern!r} - {life.meaning}", *lines,
                         *order_line, *logs, *base, *sensitivity(f)), hint, tuple(fx.polluters))
    if fx.polluters:
        fixture, lines = leak_fixture(fx)
        what = fx.leaked[0]["what"] if fx.leaked else "the shared state"
        where = f"in `{fixture}` or an autouse fixture" if fixture else "in an autouse fixture"
        hint = (f"reset {what} after each test ({where}), or give each test its own "
                f"instance; polluter: {', '.join(fx.polluters)}")
        return Decision("state-leak", fixture, (*order_line, *lines, *base, *sensitivity(f)),
                        hint, tuple(fx.polluters))
    if fx.setters:
        fixture, lines = leak_fixture(fx)
        fixture = fixture or on_failing_line(fx)
        return Decision("state-leak", fixture,
                        (f"brittle: fails alone, passes after {', '.join(fx.setters)} "
                         f"(state-setter, bisected)", *lines, *base, *sensitivity(f)),
                        f"set up what the test needs in a fixture instead of relying on "
                        f"{', '.join(fx.setters)} running first", tuple(fx.setters))
    if cross_worker(fx):
        fixture = (background_fixture(fx)[0] or on_failing_line(fx) or involved_fixture(fx)
                   or raised_in(fx))
        return Decision("race", fixture, (
            f"fails when xdist workers run beside it ({fx.replay[0]}/{fx.replay[1]} replays), "
            f"passes with the same tests before it in one process "
            f"({fx.serial_replay[1]}/{fx.serial_replay[1]}): a resource shared across "
            f"processes", *base, *sensitivity(f)),
            "give each worker its own resource (tmp_path, or a name with the xdist worker "
            "id) instead of a fixed file path or port" + (f" in `{fixture}`" if fixture else ""))
    if nondeterministic(fx):
        fixture, lines = background_fixture(fx)
        fixture = fixture or on_failing_line(fx) or involved_fixture(fx) or raised_in(fx)
        hint = ("don't assume which of two concurrent events happens first: wait for the one "
                "you expect (e.g. read until the expected message type arrives, with a "
                "timeout) or synchronise the background work")
        if only_with_workers(f):
            hint = ("fails only with parallel workers: give each worker its own resource "
                    "(tmp_path / worker id instead of a fixed file path or port)")
            lines.append("fails only when xdist workers run in parallel: a resource shared "
                         "across processes")
        return Decision("race", fixture,
                        ("same order, different outcome: timing decides", *lines, *base,
                         *sensitivity(f)), hint)
    return Decision("unknown", involved_fixture(fx) or raised_in(fx),
                    ("no rule matched: not reproduced alone or by replaying its failing run",
                     *base, *sensitivity(f)),
                    "rerun with more --runs; see the failure messages above")


def only_with_workers(f: Finding) -> bool:
    cells = f.breakdown.get("workers", {})
    serial = cells.get("0", (0, 0))
    parallel_bad = sum(b for v, (b, _) in cells.items() if v != "0")
    return serial[1] > 0 and serial[0] == 0 and parallel_bad > 0


def misconfiguration(f: Finding, results: Iterable[TestResult]) -> signatures.Signature | None:
    for r in results:
        s = signatures.match(signatures.MISCONFIG, r.failure)
        if s:
            return s
    return None


def finish(f: Finding, fx: Facts) -> Finding:
    d = decide(f, fx)
    lo, hi = wilson(f.bad, f.runs - f.skipped)
    k, n = fx.verified
    verified = n > 0 and k == n
    confidence = (f"failure rate {f.failure_rate:.0%} (95% CI {lo:.0%}-{hi:.0%}, "
                  f"{f.bad}/{f.runs - f.skipped} runs); reproducer failed {k}/{n}")
    reproduce = fx.reproduce if verified else (
        f"{fx.reproduce}  # not verified: failed {k}/{n}" if fx.reproduce else None)
    return replace(f, category=d.category, suspected_fixture=d.fixture, polluter=d.polluter,
                   evidence=d.evidence, fix_hint=d.hint, confidence=confidence,
                   reproduce=reproduce, problem=d.problem)


def classify(findings: list[Finding], runs: list[RunResult], runner: Runs,
             seed: int, context: Context | None = None) -> list[Finding]:
    """Each flaky test's follow-ups run through ``runner``, then its category, culprit,
    evidence and verified reproducer; a failing test's setup problem, if it has one."""
    context = context or Context()
    facts = experiment(findings, runs, runner, seed, context) if any(
        f.verdict is Verdict.FLAKY for f in findings) else {}
    out = []
    for f in findings:
        if f.nodeid in facts:
            out.append(finish(f, facts[f.nodeid]))
        elif f.verdict is Verdict.FAILING:
            results = [r for run in runs for r in results_for(run, f.nodeid)]
            s = misconfiguration(f, results)
            if s:
                out.append(replace(f, problem="misconfiguration",
                                   evidence=(f"signature: {s.pattern.pattern!r} - {s.meaning}",),
                                   fix_hint=MISCONFIG_HINTS.get(s.key)))
            else:
                out.append(f)
        else:
            out.append(f)
    return out


MISCONFIG_HINTS = {
    "scope-mismatch": "give the async fixture a loop_scope at least as wide as its scope, e.g. "
                      "@pytest_asyncio.fixture(scope=\"module\", loop_scope=\"module\")",
    "not-supported": "install pytest-asyncio (or anyio's plugin) and mark the test "
                     "@pytest.mark.asyncio, or set asyncio_mode = auto",
    "strict-mode": "decorate async fixtures with @pytest_asyncio.fixture in strict mode",
}
