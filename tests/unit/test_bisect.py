"""Polluter / state-setter search with a fake 'runner': no processes."""

import math

import pytest

from flakehunt.bisect import find_culprits


def run_search(search, bad_when):
    """Drive one search; ``bad_when(tests)`` says whether the victim came out bad."""
    runs = 0
    try:
        tests = next(search)
        while True:
            runs += 1
            tests = search.send(bad_when(tests))
    except StopIteration as stop:
        return stop.value, runs


@pytest.mark.parametrize("n, culprit", [(1, 0), (2, 1), (7, 3), (16, 0), (16, 15), (100, 42)])
def test_one_polluter_within_log2_plus_2_runs(n, culprit):
    cands = [f"t{i}" for i in range(n)]
    found, runs = run_search(find_culprits("victim", cands),
                             lambda tests: f"t{culprit}" in tests[:-1])
    assert found == [f"t{culprit}"]
    assert runs <= math.ceil(math.log2(n)) + 2


def test_victim_is_always_last_and_candidates_keep_their_order():
    seen = []

    def bad(tests):
        seen.append(tests)
        return "t5" in tests

    run_search(find_culprits("victim", [f"t{i}" for i in range(9)]), bad)
    for tests in seen:
        assert tests[-1] == "victim"
        body = [int(t[1:]) for t in tests[:-1]]
        assert body == sorted(body)


def test_several_polluters_each_found():
    cands = [f"t{i}" for i in range(12)]
    found, _ = run_search(find_culprits("victim", cands),
                          lambda tests: bool({"t2", "t9"} & set(tests)))
    assert found == ["t2", "t9"]


def test_effect_needing_two_tests_together_finds_no_single_culprit():
    cands = [f"t{i}" for i in range(8)]
    found, _ = run_search(find_culprits("victim", cands),
                          lambda tests: {"t1", "t6"} <= set(tests))
    assert found == []


def test_state_setter_search_looks_for_good_outcomes():
    cands = [f"t{i}" for i in range(10)]
    # brittle victim: bad unless t7 ran before it
    found, _ = run_search(find_culprits("victim", cands, want_bad=False),
                          lambda tests: "t7" not in tests)
    assert found == ["t7"]

