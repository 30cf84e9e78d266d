"""The pair screen: the Williams design, the groups from state diffs, what is left out."""

from __future__ import annotations

from dataclasses import replace

import pytest
from helpers import run_result

from flakehunt import screen, verdicts
from flakehunt.model import Outcome, Purpose, RunResult, TestResult, Verdict
from flakehunt.wire import Evidence, StateChange


@pytest.mark.parametrize("k", range(1, 16))
def test_williams_rows_put_every_ordered_pair_side_by_side(k):
    rows = screen.williams(k)
    assert len(rows) == k + k % 2 if k > 1 else len(rows) == 1
    assert all(sorted(row) == list(range(k)) for row in rows)
    covered = set().union(*(screen.pairs(row) for row in rows))
    assert covered == {(a, b) for a in range(k) for b in range(k) if a != b}


def test_williams_of_nothing():
    assert screen.williams(0) == []


def changed(nodeid: str, position: int, *items: str, outcome: str = "passed") -> TestResult:
    state = [StateChange(what=w, kind="len", before="0", after="1") for w in items]
    return TestResult(nodeid, Outcome(outcome), "main", position,
                      evidence=Evidence(state=state) if state else Evidence())


def sweep_run(index: int, results: list[TestResult]) -> RunResult:
    return run_result(index, results, order=f"hash:{index}")


def test_the_groups_are_the_tests_that_changed_one_item():
    runs = [sweep_run(0, [changed("a", 1, "m.X"), changed("b", 2), changed("c", 3, "m.X", "m.Y")]),
            sweep_run(1, [changed("c", 1), changed("d", 2, "m.Y")])]
    assert screen.changed_by(runs) == {"m.X": frozenset("ac"), "m.Y": frozenset("cd")}


def test_plan_screens_each_group_and_covers_every_pair():
    tests = [f"t{i}" for i in range(5)]
    run = sweep_run(0, [changed(t, i + 1, "m.X") for i, t in enumerate(tests)]
                    + [changed("other", 6, "m.Z")])  # an item only one test changes
    got = screen.plan([run], seed=7)
    assert all(s.purpose is Purpose.SCREEN and s.workers == 0 for s in got.specs)
    assert all(sorted(s.tests or ()) == tests for s in got.specs)
    covered = screen.side_by_side([run]).union(*(screen.pairs(s.tests or ()) for s in got.specs))
    assert {(a, b) for a in tests for b in tests if a != b} <= covered
    assert len(got.specs) <= 6 and got.items == 1 and got.left_out == 0


def test_rows_the_sweep_already_ran_side_by_side_are_left_out():
    both = [sweep_run(0, [changed("a", 1, "m.X"), changed("b", 2, "m.X")]),
            sweep_run(1, [changed("b", 1, "m.X"), changed("a", 2, "m.X")])]
    assert screen.plan(both, seed=1).specs == ()
    # side by side in another worker's process, or with a test between, does not count
    apart = [sweep_run(0, [changed("a", 1, "m.X"), changed("z", 2), changed("b", 3, "m.X")])]
    assert len(screen.plan(apart, seed=1).specs) == 2


def test_groups_too_big_and_the_run_cap():
    many = [changed(f"t{i:02}", i + 1, "m.Big") for i in range(14)]
    few = [changed(f"u{i}", 20 + i, "m.Small") for i in range(4)]
    got = screen.plan([sweep_run(0, many + few)], seed=3, max_tests=12, max_runs=3)
    assert got.too_many == 1 and got.items == 1
    assert len(got.specs) == 3 and got.left_out == 1
    assert {t for s in got.specs for t in s.tests or ()} == {f"u{i}" for i in range(4)}


def test_only_sweep_runs_make_groups():
    run = sweep_run(0, [changed("a", 1, "m.X"), changed("b", 2, "m.X")])
    assert screen.plan([replace(run, spec=replace(run.spec, purpose=Purpose.REPLAY))],
                       seed=1).specs == ()


def test_a_failure_in_a_screen_run_makes_the_test_flaky_and_shows_as_pairs():
    swept = sweep_run(0, [changed("p", 1), changed("v", 2)])
    screened = run_result(1, [changed("p", 1), changed("v", 2, outcome="failed")])
    screened = replace(screened, spec=replace(screened.spec, purpose=Purpose.SCREEN))
    found = {f.nodeid: f for f in verdicts.findings([swept, screened], ["p", "v"])}
    assert found["v"].verdict is Verdict.FLAKY
    assert found["v"].breakdown["order"] == {"hash": (0, 1), "pairs": (1, 1)}
    assert Purpose.SCREEN.counts and Purpose.SWEEP.counts and not Purpose.REPLAY.counts
