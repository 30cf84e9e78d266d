"""The corpus scorer's pure logic: crafted hunt results and truths -> the expected scores."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import score_corpus as sc  # noqa: E402

V, P, R, S, F = "t.py::victim", "t.py::polluter", "t.py::race", "t.py::stable", "t.py::broken"
TRUTH = sc.parse_truth({
    "flaky": [
        {"test": V, "category": "state-leak", "fixtures": ["registry"], "polluters": [P]},
        {"test": R, "category": "race", "fixtures": ["(none)"]},
    ],
    "failing": [F],
})


def finding(nodeid, verdict="stable", category=None, fixture=None, polluter=None):
    return {"nodeid": nodeid, "verdict": verdict, "category": category,
            "suspected_fixture": fixture, "polluter": polluter, "failed": 3, "runs": 10,
            "evidence": ["e"]}


def result(*tests, sweep=10):
    return {"tests": list(tests),
            "runs": [{"purpose": "sweep"}] * sweep + [{"purpose": "alone"}]}


def test_a_perfect_hunt_scores_everything_right():
    res = result(finding(V, "flaky", "state-leak", "registry", [P]),
                 finding(R, "flaky", "race", None), finding(P), finding(S),
                 finding(F, "failing"))
    s = sc.score_hunt("x", 1, res, TRUTH)
    assert (s.expected, s.found, s.category_right, s.fixture_right) == (2, 2, 2, 2)
    assert (s.polluter_expected, s.polluter_right) == (1, 1)
    assert s.false_flaky == [] and s.false_failing == [] and s.wrong == [] and s.found_all
    assert s.sweep_runs == 10


def test_wrong_answers_are_counted_and_explained():
    res = result(finding(V, "flaky", "loop-closed", "other", [S]),
                 finding(R, "flaky", "race", "registry"),
                 finding(S, "flaky", "race", None), finding(F, "flaky"))
    s = sc.score_hunt("x", 1, res, TRUTH)
    assert (s.found, s.category_right, s.fixture_right, s.polluter_right) == (2, 1, 0, 0)
    assert sorted(s.false_flaky) == [F, S]  # the always-failing control called flaky too
    assert {w["test"] for w in s.wrong} == {V, R}
    wrong_v = next(w for w in s.wrong if w["test"] == V)
    assert wrong_v["category"] == ["loop-closed", "state-leak"]
    assert wrong_v["polluter"] == [[S], [P]]


def test_a_missed_or_failing_victim_and_a_failed_hunt():
    res = result(finding(V, "failing"), finding(R, "unknown_verdict"), finding(S, "failing"))
    s = sc.score_hunt("x", 2, res, TRUTH)
    assert s.found == 0 and not s.found_all
    assert [m["test"] for m in s.missed] == [V, R]
    assert sorted(s.false_failing) == [S, V]  # the order-dependent victim called failing
    gone = sc.score_hunt("x", 3, None, TRUTH, error="exit 4: collection failed")
    assert gone.error == "exit 4: collection failed" and not gone.found_all
    assert len(gone.missed) == 2


@pytest.mark.parametrize("got, want, ok", [
    (None, ("(none)",), True), (None, ("fx",), False), ("fx", ("fx", "(none)"), True),
    ("other", ("fx", "(none)"), False), ("", ("(none)",), True)])
def test_fixture_rule(got, want, ok):
    assert sc.fixture_ok(got, want) is ok


@pytest.mark.parametrize("got, ok", [([P], True), ([P, "t.py::q"], True), (["t.py::z"], False),
                                     ([], False), (None, False), ([P, "t.py::z"], False)])
def test_polluter_rule(got, ok):
    assert sc.polluter_ok(got, (P, "t.py::q")) is ok


def test_summaries_per_suite_and_overall():
    good = sc.score_hunt("a", 1, result(finding(V, "flaky", "state-leak", "registry", [P]),
                                        finding(R, "flaky", "race", None)), TRUTH)
    half = sc.score_hunt("a", 2, result(finding(V, "flaky", "race", "registry", [P]),
                                        finding(S, "flaky")), TRUTH)
    control = sc.score_hunt("b", 1, result(finding(S)), sc.parse_truth({"flaky": []}))
    rep = sc.report([good, half, control])
    a, overall = rep["suites"]["a"], rep["overall"]
    assert (a["recall"], a["category"], a["fixture"], a["polluter"]) == (0.75, 0.6667, 1.0, 1.0)
    assert (a["false_flaky"], a["reliability"]) == (1, 0.5)
    assert rep["suites"]["b"]["recall"] is None and rep["suites"]["b"]["reliability"] == 1.0
    assert overall["hunts"] == 3 and overall["reliability"] == 0.6667
    text = sc.table(rep)
    assert "| overall" in text and "75%" in text and "67%" in text


@pytest.mark.parametrize("data", [
    {"flaky": [{"test": V, "category": "flaky", "fixtures": ["x"]}]},
    {"flaky": [{"test": V, "category": "race"}]},
    {"flaky": [{"test": V, "category": "race", "fixtures": ["x"], "polluter": [P]}]},
    {"flaky": [{"test": V, "category": "race", "fixtures": ["x"]}] * 2},
    {"victims": []}])
def test_malformed_truth_is_refused(data):
    with pytest.raises(ValueError):
        sc.parse_truth(data)


def test_an_incidental_test_may_be_reported_either_way_but_never_failing():
    truth = sc.parse_truth({"flaky": [{"test": V, "category": "race",
                                       "fixtures": ["(none)"]}],
                            "incidental": [{"test": S, "why": "the victim's leftover"}]})
    assert truth.named() == {V, S}
    flaky = sc.score_hunt("x", 1, result(finding(V, "flaky", "race"),
                                         finding(S, "flaky", "race")), truth)
    stable = sc.score_hunt("x", 1, result(finding(V, "flaky", "race"), finding(S)), truth)
    for s in (flaky, stable):
        assert (s.expected, s.found, s.false_flaky, s.found_all) == (1, 1, [], True)
    failing = sc.score_hunt("x", 1, result(finding(V, "flaky", "race"),
                                           finding(S, "failing")), truth)
    assert failing.false_failing == [S]
    with pytest.raises(ValueError):
        sc.parse_truth({"incidental": [{"test": S}]})  # no why: refused


def test_truth_names_every_id_it_relies_on():
    assert TRUTH.named() == {V, P, R, F}


def test_rescore_scores_a_kept_hunt_and_counts_a_missing_one_as_no_result(tmp_path):
    import json

    suite = tmp_path / "corpus" / "demo"
    suite.mkdir(parents=True)
    (suite / "truth.toml").write_text(
        '[[flaky]]\ntest = "t.py::victim"\ncategory = "race"\nfixtures = ["(none)"]\n')
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "demo-3.json").write_text(json.dumps(result(finding(V, "flaky", "race", None))))
    found = sc.rescore(kept, suite, 3)
    assert (found.found, found.expected, found.error) == (1, 1, None)
    missing = sc.rescore(kept, suite, 4)
    assert missing.found == 0 and missing.error == "no kept result demo-4.json"


def test_only_takes_names_and_patterns():
    names = [p.name for p in sc.suites(["leak_cwd", "race_xdist_*"])]
    assert names[0] == "leak_cwd" and len(names) >= 4
    assert all(n == "leak_cwd" or n.startswith("race_xdist_") for n in names)
    with pytest.raises(SystemExit, match="no such suite: nothing_*"):
        sc.suites(["nothing_*"])
