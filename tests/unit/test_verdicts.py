from __future__ import annotations

from helpers import result, run_result

from flakehunt import model
from flakehunt.model import Outcome, Verdict
from flakehunt.verdicts import findings


def fail(nodeid: str, message: str, outcome: str = "failed", position: int | None = None):
    return model.TestResult(nodeid, Outcome(outcome), "main", position,
                            failure=model.Failure("call", message))


def sweep():
    """Six runs over five tests with known outcomes."""
    plan = [  # (order, workers, profile)
        ("declared", 0, "none"), ("reverse", 2, "none"), ("hash:1", 0, "single-core"),
        ("hash:2", 2, "single-core"), ("hash:3", 0, "none"), ("hash:4", 2, "none"),
    ]
    runs = []
    for i, (order, workers, profile) in enumerate(plan):
        flaky_bad = workers == 2  # fails only under xdist
        results = [
            result("t.py::stable", "passed"),
            fail("t.py::flaky", "AssertionError: race") if flaky_bad
            else result("t.py::flaky", "passed"),
            fail("t.py::failing", "AssertionError: always\nsecond line"),
            result("t.py::skipped", "skipped"),
            result("t.py::half_skipped", "skipped" if i % 2 else "passed"),
        ]
        runs.append(run_result(i, results, order=order, workers=workers, profile=profile))
    return runs


def by_id(found):
    return {f.nodeid: f for f in found}


def test_verdicts():
    found = by_id(findings(sweep(), ["t.py::stable", "t.py::flaky", "t.py::failing",
                                     "t.py::skipped", "t.py::half_skipped", "t.py::never"]))
    assert found["t.py::stable"].verdict is Verdict.STABLE
    assert found["t.py::flaky"].verdict is Verdict.FLAKY
    assert found["t.py::failing"].verdict is Verdict.FAILING
    assert found["t.py::skipped"].verdict is Verdict.SKIPPED
    assert found["t.py::half_skipped"].verdict is Verdict.STABLE
    assert found["t.py::never"].verdict is Verdict.NOT_RUN


def test_counts():
    found = by_id(findings(sweep(), []))
    f = found["t.py::flaky"]
    assert (f.runs, f.passed, f.failed, f.errored, f.skipped, f.crashed) == (6, 3, 3, 0, 0, 0)
    assert f.bad == 3 and f.failure_rate == 0.5
    s = found["t.py::skipped"]
    assert (s.runs, s.passed, s.skipped) == (6, 0, 6)
    never = by_id(findings([], ["t.py::never"]))["t.py::never"]
    assert (never.runs, never.passed, never.failure_rate) == (0, 0, 0.0)


def test_findings_in_collection_order_then_unknown_ids():
    found = findings(sweep(), ["t.py::failing", "t.py::never", "t.py::stable"])
    ids = [f.nodeid for f in found]
    assert ids[:3] == ["t.py::failing", "t.py::never", "t.py::stable"]
    assert set(ids[3:]) == {"t.py::flaky", "t.py::skipped", "t.py::half_skipped"}
    assert len(ids) == len(set(ids))


def test_breakdown_by_order_kind_workers_and_profile():
    f = by_id(findings(sweep(), []))["t.py::flaky"]
    assert f.breakdown["order"] == {"declared": (0, 1), "reverse": (1, 1), "hash": (2, 4)}
    assert f.breakdown["workers"] == {"0": (0, 3), "2": (3, 3)}
    assert f.breakdown["profile"] == {"none": (2, 4), "single-core": (1, 2)}


def test_skipped_runs_are_excluded_from_the_breakdown():
    found = by_id(findings(sweep(), []))
    half = found["t.py::half_skipped"]
    assert half.breakdown["workers"] == {"0": (0, 3)}  # the three odd runs were skipped
    assert sum(runs for _, runs in half.breakdown["order"].values()) == 3
    assert found["t.py::skipped"].breakdown == {}


def test_error_and_crash_count_as_bad():
    runs = [
        run_result(0, [result("t.py::a", "passed"), result("t.py::b", "error")]),
        run_result(1, [result("t.py::a", "crashed"), result("t.py::b", "error")]),
        run_result(2, [result("t.py::a", "passed"), result("t.py::b", "crashed")]),
    ]
    found = by_id(findings(runs, ["t.py::a", "t.py::b"]))
    a, b = found["t.py::a"], found["t.py::b"]
    assert a.verdict is Verdict.FLAKY and (a.crashed, a.passed) == (1, 2)
    assert b.verdict is Verdict.FAILING and (b.errored, b.crashed) == (2, 1)
    assert a.breakdown["order"] == {"declared": (1, 3)}


def test_repeated_executions_in_one_run_each_count():
    run = run_result(0, [result("t.py::r", "passed", position=1),
                         result("t.py::r", "failed", position=2),
                         result("t.py::r", "passed", position=3)])
    f = by_id(findings([run], ["t.py::r"]))["t.py::r"]
    assert (f.runs, f.passed, f.failed, f.verdict) == (3, 2, 1, Verdict.FLAKY)


def test_messages_first_line_most_common_first():
    runs = [run_result(i, [fail("t.py::m", msg)]) for i, msg in
            enumerate(["B: rare\ndetail", "A: common\nx", "A: common\ny", "", "A: common"])]
    f = by_id(findings(runs, []))["t.py::m"]
    assert f.messages == ("A: common", "B: rare")
    assert f.verdict is Verdict.FAILING and f.failed == 5
