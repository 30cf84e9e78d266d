"""A run's results kept compact (flakehunt.model.Results): read back exactly as given."""

from __future__ import annotations

import pytest

from flakehunt.model import (
    Failure,
    Outcome,
    Results,
    RunResult,
    RunSpec,
    RunStatus,
    TestResult,
)

GIVEN = (
    TestResult("t.py::a", Outcome.PASSED, "gw0", 1, 0.25),
    TestResult("t.py::b", Outcome.FAILED, "gw1", 1, 0.5, Failure("call", "assert 3 == 0")),
    TestResult("t.py::c", Outcome.SKIPPED, "gw0", 2, 0.0),
    TestResult("t.py::d", Outcome.PASSED, "gw0", 3, 0.125,
               evidence={"state": [{"kind": "global", "what": "m.cache"}]}),
    TestResult("t.py::e", Outcome.CRASHED, "gw1", None, 0.0, Failure(None, "crashed")),
    TestResult("t.py::a", Outcome.ERROR, "gw0", 4, 1.5, Failure("teardown", "boom")),
)


def test_reads_back_what_was_given_in_order():
    kept = Results(GIVEN)
    assert len(kept) == len(GIVEN)
    assert tuple(kept) == GIVEN
    assert kept == GIVEN and GIVEN == kept and kept == list(GIVEN)
    assert [kept[i] for i in range(len(GIVEN))] == list(GIVEN)
    assert kept[-1] == GIVEN[-1] and kept[1:3] == GIVEN[1:3]
    assert hash(kept) == hash(GIVEN)
    with pytest.raises(IndexError):
        kept[len(GIVEN)]
    assert kept != GIVEN[:-1] and kept != Results(reversed(GIVEN))


def test_keeps_whole_only_the_results_with_a_failure_or_evidence():
    kept = Results(GIVEN)
    assert kept.whole() == [GIVEN[1], GIVEN[3], GIVEN[4], GIVEN[5]]
    assert kept[0].evidence == {} and kept[0].failure is None
    assert kept[3].evidence["state"][0]["what"] == "m.cache"


def test_reads_by_test_and_by_place():
    kept = Results(GIVEN)
    assert kept.of("t.py::a") == [GIVEN[0], GIVEN[5]]
    assert kept.of("t.py::zz") == []
    assert kept.before("gw0", 4) == ["t.py::a", "t.py::c", "t.py::d"]
    assert kept.before("gw0", 1) == []
    assert kept.before("gw1", 5) == ["t.py::b"]  # a crash has no place
    assert kept.before("gw9", 5) == []


def test_a_run_keeps_any_sequence_of_results_compact():
    run = RunResult(RunSpec(index=1), RunStatus.OK, 1, 1.0, GIVEN, "/tmp")
    assert isinstance(run.results, Results)
    assert run.results == GIVEN
    assert run == RunResult(RunSpec(index=1), RunStatus.OK, 1, 1.0, list(GIVEN), "/tmp")
    assert not RunResult(RunSpec(index=2), RunStatus.CRASHED, None, 1.0, (), "/tmp").results
