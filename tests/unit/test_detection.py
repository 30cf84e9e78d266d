"""Detection power: the rate a hunt rules out, overall and per planned condition."""

from __future__ import annotations

import pytest

from flakehunt import verdicts
from flakehunt.model import Finding, HuntResult, Outcome, RunResult, RunSpec, TestResult, Verdict
from flakehunt.report import detection_lines
from flakehunt.settings import HuntSettings
from flakehunt.stats import percent_up, rules_out


@pytest.mark.parametrize("n", [1, 14, 50, 59, 300])
def test_rules_out_is_the_rate_seen_at_least_once_with_95_percent(n):
    p = rules_out(n)
    assert p is not None
    assert 1 - (1 - p) ** n == pytest.approx(0.95)
    assert 1 - (1 - p * 0.99) ** n < 0.95  # and no lower rate


def test_50_runs_rule_out_6_percent_and_3_over_n_is_found():
    assert percent_up(rules_out(50)) == "6%"
    for n in (20, 50, 100, 500):
        assert rules_out(n) <= 3 / n  # a 3/N rate is found with >= 95% probability
    assert rules_out(0) is None


def test_percent_is_rounded_up_never_down():
    assert percent_up(0.0581) == "6%"
    assert percent_up(0.0601) == "7%"
    assert percent_up(0.006) == "0.6%"
    assert percent_up(0.0061) == "0.7%"


def test_early_stop_is_opt_in():
    assert HuntSettings().min_rate == 0


def run(i: int, profile: str, workers: int, skipped: bool = False) -> RunResult:
    results = (TestResult("t::a", Outcome.PASSED, position=1),
               TestResult("t::b", Outcome.SKIPPED if skipped else Outcome.PASSED, position=2))
    return RunResult(RunSpec(index=i, profile=profile, workers=workers), "ok", 0, 1.0,
                     results, "/tmp")


def test_detection_over_the_runs_each_test_had_and_per_condition():
    runs = [run(i, "none" if i % 3 else "quota-25", 2 if i % 8 == 7 else 0, skipped=i < 4)
            for i in range(48)]
    d = verdicts.detection(verdicts.findings(runs, ["t::a", "t::b"]))
    assert d is not None
    assert d["runs"] == 44  # t::b was skipped in 4 runs
    assert d["rules_out"] == pytest.approx(rules_out(44), abs=1e-4)
    cond = d["per_condition"]
    assert set(cond) == {"profile", "workers"}
    assert cond["workers"]["2"]["runs"] == 6
    assert cond["workers"]["2"]["rules_out"] == pytest.approx(rules_out(6), abs=1e-4)
    assert list(cond["workers"]) == ["0", "2"]
    assert cond["profile"]["quota-25"]["runs"] == 14  # t::b missed 2 of its 16


def test_no_test_ran_no_claim():
    assert verdicts.detection([Finding("t::a", Verdict.SKIPPED, runs=3, passed=0, failed=0,
                                       errored=0, skipped=3)]) is None


def test_console_states_the_rate_overall_and_per_condition():
    runs = [run(i, "none" if i % 2 else "jitter", 0) for i in range(50)]
    findings = verdicts.findings(runs, ["t::a", "t::b"])
    result = HuntResult("/r", (), 1, tuple(runs), tuple(findings),
                        settings={"detection": verdicts.detection(findings)})
    lines = detection_lines(result)
    assert lines[0] == ("detection: every test ran in at least 50 sweep runs: a test failing 6% "
                        "of runs would have been seen failing with 95% probability")
    assert "profile jitter 25 runs -> 12%, none 25 runs -> 12%" in lines[1]
    assert "workers" not in lines[1]  # one worker count: the overall line says it
