"""The sweep's stop rule, pure: outcomes in, "enough?" out."""

from __future__ import annotations

import math

import pytest

from flakehunt.model import Outcome, RunResult, RunSpec, TestResult
from flakehunt.stopping import StopRule, runs_needed


def run(**outcomes: Outcome) -> RunResult:
    results = tuple(TestResult(n, o, position=i + 1) for i, (n, o) in enumerate(outcomes.items()))
    return RunResult(RunSpec(index=0), "ok", 0, 1.0, results, "/tmp")


P, F, S = Outcome.PASSED, Outcome.FAILED, Outcome.SKIPPED


@pytest.mark.parametrize("rate, n", [(0.2, 14), (0.1, 29), (0.05, 59), (0.5, 5)])
def test_runs_needed_is_the_smallest_n_ruling_the_rate_out(rate, n):
    assert runs_needed(rate) == n
    assert (1 - rate) ** n <= 0.05 < (1 - rate) ** (n - 1)


def test_rate_zero_never_stops():
    rule = StopRule(runs_needed(0))
    for _ in range(200):
        rule.add(run(a=P))
    assert rule.needed is None and not rule.satisfied(("a",))


def test_stops_once_every_test_is_flaky_or_has_enough_same_outcomes():
    rule = StopRule(3)
    rule.add(run(a=P, b=F, c=P))
    rule.add(run(a=F, b=F, c=P))  # a: flaky, settled at once
    assert rule.settled("a") and not rule.settled("b")
    assert not rule.satisfied(("a", "b", "c"))
    rule.add(run(a=P, b=F, c=P))  # b failed 3/3 and c passed 3/3
    assert rule.satisfied(("a", "b", "c"))
    assert rule.flaky == 1


def test_a_test_that_never_ran_does_not_hold_the_sweep_back():
    rule = StopRule(2)
    rule.add(run(a=P, s=S))
    rule.add(run(a=P, s=S))
    assert rule.satisfied(("a", "s", "never-collected-in-a-run"))


def test_nothing_run_is_never_enough():
    assert not StopRule(1).satisfied(("a",))


def test_the_stated_confidence_holds_by_simulation():
    """A test failing at exactly min_rate goes unseen in `needed` runs < 5% of the time."""
    import random

    rng = random.Random(7)
    n = runs_needed(0.2)
    misses = sum(all(rng.random() >= 0.2 for _ in range(n)) for _ in range(20000))
    assert misses / 20000 < 0.05
    assert math.isclose(misses / 20000, 0.8 ** n, abs_tol=0.01)



def test_missing_counts_the_runs_the_least_settled_test_still_needs():
    rule = StopRule(3)
    assert rule.missing(("a", "b")) == 3  # nothing seen yet: every run
    rule.add(run(a=P, b=F))
    assert rule.missing(("a", "b")) == 2
    rule.add(run(a=F, b=F))  # a is flaky now: settled
    assert rule.missing(("a", "b")) == 1
    rule.add(run(a=P, b=F))
    assert rule.missing(("a", "b")) == 0 and rule.satisfied(("a", "b"))
    assert StopRule(None).missing(("a",)) is None
