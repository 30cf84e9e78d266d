"""What classification spends, with a simulated suite and no processes.

A fake runner plays a suite of independent tests plus one order-dependent victim
(fails when its polluter ran earlier in the same process) and one nondeterministic
test; the sweep is made of random orders. We count the follow-up runs.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import replace

import pytest

from flakehunt import verdicts
from flakehunt.bisect import find_culprits
from flakehunt.classify import (
    Facts,
    bisect_spec,
    classify,
    known,
    narrowed,
    prime_suspect,
    searching,
    setter_candidates,
    spec_key,
)
from flakehunt.model import Failure, Outcome, RunResult, RunSpec, TestResult

VICTIM, POLLUTER, RACE = "t::victim", "t::polluter", "t::race"


class FakeSuite:
    """Runs specs in-process; counts them by purpose."""

    def __init__(self, n: int, seed: int, race_rate: float = 0.3) -> None:
        self.tests = [f"t::s{i:03d}" for i in range(n)] + [VICTIM, POLLUTER, RACE]
        self.rng = random.Random(seed)
        self.race_rate = race_rate
        self.index = 0
        self.by_purpose: dict[str, int] = {}
        self.runs: list[RunResult] = []
        self.steps: list[tuple[str, int]] = []

    def run(self, specs):
        return [self.one(s) for s in specs]

    # -- the Runs protocol --
    def stream(self, steps, then):
        """One key's step at a time, first come first served: keys advance on their own."""
        queue = deque(steps.items())
        while queue:
            key, specs = queue.popleft()
            self.steps.append((key, len(specs)))
            nxt = then(key, self.run(specs))
            if nxt:
                queue.append((key, nxt))

    def command(self, spec: RunSpec) -> str:
        return " ".join(spec.tests or ())

    def note(self, text: str) -> None:
        pass

    def one(self, spec: RunSpec) -> RunResult:
        self.index += 1
        self.by_purpose[spec.purpose] = self.by_purpose.get(spec.purpose, 0) + 1
        order = list(spec.tests) if spec.tests else self.order(spec)
        order = [t for t in order for _ in range(spec.count)]
        results, polluted = [], False
        for pos, t in enumerate(order, 1):
            bad = (t == VICTIM and polluted) or (t == RACE and self.rng.random() < self.race_rate)
            polluted |= t == POLLUTER
            ev = {"state": [{"what": "app.REGISTRY", "kind": "len", "before": "0 entries",
                             "after": "1 entry"}]} if t == POLLUTER else {}
            if t == VICTIM:
                ev = {"fixtures": [{"name": "registry", "user": True, "scope": "function",
                                    "global": "app.REGISTRY"}]}
            results.append(TestResult(
                t, Outcome.FAILED if bad else Outcome.PASSED, "main", pos, 0.01,
                Failure("call", "assert 1 == 0") if bad else None, ev))
        run = RunResult(replace(spec, index=self.index), "ok", int(any(r.outcome.bad
                                                                        for r in results)),
                        1.0, tuple(results), "/tmp")
        self.runs.append(run)
        return run

    def order(self, spec: RunSpec) -> list[str]:
        tests = list(self.tests)
        random.Random(spec.random_seed).shuffle(tests)
        return tests

    def sweep(self, n: int) -> list[RunResult]:
        return self.run(RunSpec(index=0, order=f"hash:{i}", random_seed=i) for i in range(n))


def hunt(n_tests: int, sweep_runs: int, seed: int):
    suite = FakeSuite(n_tests, seed)
    runs = suite.sweep(sweep_runs)
    found = verdicts.findings(runs, suite.tests)
    suite.by_purpose.clear()
    findings = classify(found, runs, suite, seed)
    return suite, {f.nodeid: f for f in findings}


@pytest.mark.parametrize("seed", range(6))
def test_polluter_found_within_log2_plus_3_runs_and_race_told_apart(seed):
    suite, by_id = hunt(60, 14, seed)
    assert by_id[VICTIM].verdict.value == "flaky"
    assert by_id[VICTIM].category == "state-leak"
    assert by_id[VICTIM].polluter == (POLLUTER,)
    assert by_id[RACE].category == "race"
    bisect_runs = sum(1 for r in suite.runs if r.spec.purpose in ("bisect", "replay")
                      and VICTIM in (r.spec.tests or ()))
    n = len(suite.tests)
    assert bisect_runs <= math.ceil(math.log2(n)) + 3
    assert bisect_runs <= 2  # the sweep's records single the polluter out: one run shows it


def test_follow_ups_do_not_grow_with_the_suite():
    small, _ = hunt(30, 14, 1)
    large, _ = hunt(600, 14, 1)
    assert sum(large.by_purpose.values()) <= sum(small.by_purpose.values()) + 2


def result(prefix: list[str], bad: bool) -> tuple[RunResult, TestResult]:
    """A serial run of ``prefix`` then the victim, which failed or passed."""
    rs = [TestResult(t, Outcome.PASSED, position=i + 1) for i, t in enumerate(prefix)]
    me = TestResult(VICTIM, Outcome.FAILED if bad else Outcome.PASSED, position=len(prefix) + 1)
    return RunResult(RunSpec(index=0), "ok", 0, 1.0, (*rs, me), "/tmp"), me


def test_narrowed_keeps_what_preceded_every_failure_and_no_pass():
    fx = Facts(VICTIM, bad=[result(["a", "p", "b"], True), result(["p", "c"], True)],
               good=[result(["a", "c"], False)])
    assert narrowed(fx, ["a", "p", "b"]) == ["p"]
    # two alternative polluters: no test preceded every failure, the pruned list stays
    fx.bad.append(result(["q", "b"], True))
    assert narrowed(fx, ["a", "p", "b"]) == ["p", "b"]


def test_setter_candidates_drop_what_preceded_a_failure():
    brittle = Facts(VICTIM, bad=[result([], True), result(["a"], True)],
                    good=[result(["a", "s", "b"], False)])
    assert setter_candidates(brittle, ["a", "s", "b"]) == ["s", "b"]
    # failed after every test that preceded a pass as well: nothing can be its setter
    cold = Facts(VICTIM, bad=[result([], True), result(["a", "s"], True), result(["b"], True)],
                 good=[result(["a", "s", "b"], False)])
    assert setter_candidates(cold, ["a", "s", "b"]) == []


def test_prime_suspect_is_the_closed_loop_creator_or_the_one_state_changer():
    loop = {"failure_anatomy": [{"loops": [{"closed": True, "created_by_test": "t::maker"}]}]}
    me = TestResult(VICTIM, Outcome.FAILED, position=3, evidence=loop)
    run = RunResult(RunSpec(index=0), "ok", 1, 1.0, (me,), "/tmp")
    assert prime_suspect(Facts(VICTIM), me, run, ["t::x", "t::maker"]) == "t::maker"
    assert prime_suspect(Facts(VICTIM), me, run, ["t::x"]) is None

    fixtures = {"fixtures": [{"name": "reg", "user": True, "global": "app.REG"}]}
    me = TestResult(VICTIM, Outcome.FAILED, position=3, evidence=fixtures)
    changer = TestResult("t::c", Outcome.PASSED, position=1,
                         evidence={"state": [{"what": "app.REG._items"}]})
    other = TestResult("t::o", Outcome.PASSED, position=2,
                       evidence={"state": [{"what": "app.OTHER"}]})
    run = RunResult(RunSpec(index=0), "ok", 1, 1.0, (changer, other, me), "/tmp")
    assert prime_suspect(Facts(VICTIM), me, run, ["t::c", "t::o"]) == "t::c"
    both = replace(other, evidence={"state": [{"what": "app.REG"}]})
    run = RunResult(RunSpec(index=0), "ok", 1, 1.0, (changer, both, me), "/tmp")
    assert prime_suspect(Facts(VICTIM), me, run, ["t::c", "t::o"]) is None  # not unique


def test_known_answers_only_from_agreeing_runs():
    spec = RunSpec(index=4, purpose="bisect", tests=("a", VICTIM))
    fx = Facts(VICTIM)
    assert known(fx, spec) is None
    fx.tried[spec_key(spec)] = [1, 1]
    assert known(fx, replace(spec, index=9, purpose="repro")) is True
    fx.tried[spec_key(spec)] = [1, 2]
    assert known(fx, spec) is None


def test_searching_runs_one_step_at_a_time_and_answers_known_steps_from_earlier_runs():
    spec = RunSpec(index=0, order="hash:1")
    fx = Facts(VICTIM)
    fx.tried[spec_key(bisect_spec(spec, ["a", POLLUTER, VICTIM]))] = [1, 1]  # run before
    chain = searching(fx, find_culprits(VICTIM, ["a", POLLUTER, "b", "c"]), spec)
    suite, asked = FakeSuite(0, 1), []
    try:
        step = next(chain)
        while True:
            assert len(step) == 1 and step[0][0] == "bisect"
            asked.append(step[0][1].tests)
            step = chain.send(suite.run([step[0][1]]))
    except StopIteration as stop:
        found = stop.value
    assert found == [POLLUTER]
    assert ("a", POLLUTER, VICTIM) not in asked  # known bad: no run for it
    assert asked[0] == ("a", VICTIM)



# -- follow-up runs that did not run their test -----------------------------------------------
class ErroringSuite(FakeSuite):
    """The sweep runs as FakeSuite's; every follow-up run errors as pytest does on an id
    it cannot find (exit code 4, nothing run), or, for ``silent``, ends without running
    the test at all (exit code 5)."""

    def __init__(self, *args, silent: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.silent = silent

    def one(self, spec: RunSpec) -> RunResult:
        if spec.purpose == "sweep":
            return super().one(spec)
        self.index += 1
        status, code, note = (("ok", 5, "no tests ran in 0.01s") if self.silent else
                              ("error", 4, f"ERROR: not found: {spec.tests}\nno tests ran"))
        run = RunResult(replace(spec, index=self.index), status, code, 0.1, (), "/tmp", None,
                        note)
        self.runs.append(run)
        return run


@pytest.mark.parametrize("silent", [False, True])
def test_a_follow_up_that_did_not_run_the_test_is_a_warning_never_a_pass(silent):
    suite = ErroringSuite(20, 3, race_rate=0.5, silent=silent)
    runs = suite.sweep(8)
    found = verdicts.findings(runs, suite.tests)
    assert {f.nodeid for f in found if f.verdict.value == "flaky"} >= {RACE, VICTIM}
    warnings: list[str] = []
    by_id = {f.nodeid: f for f in classify(found, runs, suite, 3, warnings=warnings)}
    for nodeid in (RACE, VICTIM):
        f = by_id[nodeid]
        evidence = "\n".join(f.evidence)
        # the follow-ups fed no tally (what the sweep showed alone stays), named no
        # culprit, verified no reproducer
        assert "alone:" not in evidence or "0/0 repeats" in evidence, evidence
        assert "order replayed:" not in evidence and "under suspicion" not in evidence, evidence
        assert f.polluter == ()
        assert "# not verified: failed 0/0" in (f.reproduce or ""), f.reproduce
        # ...and the evidence says what was tried and why it told nothing
        line = next(e for e in f.evidence if e.startswith("not counted: "))
        assert "follow-up run(s) did not run the test (" in line and "the test alone" in line
        assert "a reproducer trial" in line
        assert ("the test did not run (exit code 5): no tests ran" if silent else
                "pytest errored (exit code 4): ERROR: not found") in line
        assert sum(w.startswith(f"{nodeid}: ") and "did not run the test" in w
                   for w in warnings) == 1, warnings
    assert len(warnings) == len([f for f in found if f.verdict.value == "flaky"])
    assert by_id[VICTIM].category == "unknown"  # it never failed first in a process
