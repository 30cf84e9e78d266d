"""The decision table, pure: synthetic facts in, category/fixture/evidence out."""

from __future__ import annotations

import pytest

from flakehunt.classify import Context, Facts, decide, order_dependent, self_polluting
from flakehunt.model import Failure, Finding, Outcome, RunResult, RunSpec, TestResult, Verdict
from flakehunt.stats import wilson

T = "tests/test_x.py::test_victim"


def finding(**kw) -> Finding:
    base = dict(nodeid=T, verdict=Verdict.FLAKY, runs=20, passed=12, failed=8, errored=0,
                skipped=0, breakdown={"workers": {"0": (8, 15), "2": (0, 5)}})
    base.update(kw)
    return Finding(**base)


def bad(message: str, evidence: dict | None = None, phase: str = "call",
        workers: int = 0) -> tuple[RunResult, TestResult]:
    r = TestResult(T, Outcome.FAILED if phase == "call" else Outcome.ERROR, position=3,
                   failure=Failure(phase, message, message), evidence=evidence or {})
    run = RunResult(RunSpec(index=1, workers=workers), "ok", 1, 1.0, (r,), "/tmp")
    return run, r


def good(evidence: dict | None = None) -> tuple[RunResult, TestResult]:
    r = TestResult(T, Outcome.PASSED, position=2, evidence=evidence or {})
    return RunResult(RunSpec(index=2), "ok", 0, 1.0, (r,), "/tmp"), r


USER = {"fixtures": [{"name": "manager", "scope": "function", "user": True,
                      "global": "app.state.MANAGER"},
                     {"name": "client", "scope": "function", "user": True}]}


def test_lifecycle_signature_wins_over_order_evidence():
    anatomy = {"phase": "call", "holders": [
        {"object": "Runner", "attribute": "_loop", "fixture": "_function_scoped_runner",
         "fixture_path": "", "local": "runner", "loop": "loop#9"},
        {"object": "Manager", "attribute": "_loop", "fixture": "manager", "fixture_path": "",
         "local": "self", "loop": "loop#1"}],
        "loops": [{"label": "loop#1", "closed": True, "created_by_test": "tests/a.py::test_a",
                   "created_by_fixture": "_function_scoped_runner"},
                  {"label": "loop#9", "closed": False, "created_by_test": T}]}
    fx = Facts(T, bad=[bad("RuntimeError: Event loop is closed",
                           {**USER, "failure_anatomy": [anatomy]})], good=[good(USER)],
               alone_first=[0, 3], replay=[2, 2], polluters=["tests/a.py::test_a"])
    d = decide(finding(), fx)
    assert d.category == "loop-closed"
    assert d.fixture == "manager"  # the user's fixture, not pytest-asyncio's runner
    assert d.polluter == ("tests/a.py::test_a",)
    text = "\n".join(d.evidence)
    assert "Manager._loop holds loop#1" in text and "closed" in text
    assert "event_loop" not in d.hint  # never suggest overriding event_loop
    assert d.culprit is not None and d.culprit.kind == "loop-holder"
    assert (d.culprit.target, d.culprit.fixture) == ("Manager._loop", "manager")
    assert not d.culprit.verified  # nothing reset it yet


def test_dead_event_loop_fixture_is_called_out():
    fx = Facts(T, bad=[bad("RuntimeError: Event loop is closed", USER)], good=[good(USER)],
               context=Context(dead_event_loop=("tests/test_x.py:12 (class-scoped)",)))
    d = decide(finding(), fx)
    assert d.category == "loop-closed"
    assert any("tests/test_x.py:12" in e and "pytest-asyncio >= 1.0" in e for e in d.evidence)


@pytest.mark.parametrize("message", [
    "RuntimeError: Task <Task pending> got Future <Future pending> attached to a different loop",
    "RuntimeError: <asyncio.locks.Event object at 0x1> is bound to a different event loop",
    "RuntimeError: There is no current event loop in thread 'MainThread'.",
])
def test_other_lifecycle_signatures(message):
    fx = Facts(T, bad=[bad(message)], good=[good()], alone_first=[1, 3], alone_later=[2, 5])
    assert decide(finding(), fx).category == "loop-closed"


def test_state_leak_names_polluter_leaked_object_and_fixture():
    polluter_result = TestResult("tests/test_x.py::test_polluter", Outcome.PASSED, position=1,
                                 evidence={"state": [{"what": "app.state.MANAGER._queues",
                                                      "kind": "len", "before": "0 entries",
                                                      "after": "1 entry"}]})
    fx = Facts(T, bad=[bad("assert 3 == 0", USER)], good=[good(USER)], alone_first=[0, 2],
               replay=[2, 2], polluters=["tests/test_x.py::test_polluter"])
    fx.leaked = [{"what": "app.state.MANAGER._queues", "kind": "len", "before": "0 entries",
                  "after": "1 entry", "by": polluter_result.nodeid}]
    assert order_dependent(fx)
    d = decide(finding(), fx)
    assert d.category == "state-leak"
    assert d.fixture == "manager"
    assert d.polluter == ("tests/test_x.py::test_polluter",)
    assert any("app.state.MANAGER._queues: 0 entries -> 1 entry" in e for e in d.evidence)
    assert "app.state.MANAGER._queues" in d.hint
    assert d.culprit is not None
    assert (d.culprit.kind, d.culprit.target, d.culprit.fixture) == (
        "len", "app.state.MANAGER._queues", "manager")
    assert d.culprit.detail == "0 entries -> 1 entry" and not d.culprit.verified


def test_brittle_test_reports_its_state_setter():
    fx = Facts(T, bad=[bad("assert None")], good=[good()], alone_first=[2, 2],
               setters=["tests/test_x.py::test_setup_state"])
    d = decide(finding(), fx)
    assert d.category == "state-leak"
    assert d.polluter == ("tests/test_x.py::test_setup_state",)
    assert "brittle" in d.evidence[0]


def test_race_from_mixed_outcomes_alone_names_the_background_task_fixture():
    anatomy = {"phase": "call", "tasks_from_fixtures": [
        {"task": "run_portal", "user": False, "fixture": "client", "test": T},
        {"task": "Manager.heartbeat", "user": True, "fixture": "manager", "test": T}]}
    fx = Facts(T, bad=[bad("assert 'pong' == 'subscribed'",
                           {**USER, "failure_anatomy": [anatomy]})], good=[good(USER)],
               alone_first=[0, 2], alone_later=[3, 14], replay=[1, 2])
    d = decide(finding(), fx)
    assert d.category == "race"
    assert d.fixture == "manager"  # the project's own task wins over library plumbing
    assert any("Manager.heartbeat" in e for e in d.evidence)


def test_cross_worker_race():
    fx = Facts(T, bad=[bad("AssertionError", {**USER, "failure_anatomy": [
        {"phase": "call", "on_failing_line": ["client"]}]}, workers=2)], good=[good(USER)],
        alone_first=[0, 2], replay=[2, 2], serial_replay=[0, 2])
    d = decide(finding(), fx)
    assert d.category == "race"
    assert d.fixture == "client"
    assert "across processes" in d.evidence[0]


def test_nothing_conclusive_is_unknown_not_a_guess():
    fx = Facts(T, bad=[bad("assert x")], good=[good()], alone_first=[0, 2], replay=[2, 2])
    d = decide(finding(), fx)
    assert d.category == "unknown"


def test_wide_fixture_teardown_error_is_blamed_on_the_fixture():
    ev = {"fixtures": [{"name": "db", "scope": "module", "user": True}],
          "failure_anatomy": [{"phase": "teardown", "raised_in_fixture": "db"}]}
    fx = Facts(T, bad=[bad("ValueError: boom", ev, phase="teardown")], good=[good()],
               alone_first=[0, 2], alone_later=[0, 14], replay=[1, 2])
    d = decide(finding(), fx)
    assert d.fixture == "db"
    assert d.problem == "fixture-teardown"
    assert "module-scoped `db`" in d.evidence[0]


def test_self_polluting_is_order_dependent_not_a_race():
    fx = Facts(T, alone_first=[0, 2], alone_later=[14, 14], replay=[2, 2])
    assert self_polluting(fx) and order_dependent(fx)


def test_wilson_interval():
    lo, hi = wilson(8, 20)
    assert 0.2 < lo < 0.4 < hi < 0.65
    assert wilson(0, 0) == (0.0, 1.0)
    assert wilson(0, 10)[0] == 0.0


def test_an_unverified_culprit_is_no_proof_of_order_dependence():
    fx = Facts(T, bad=[bad("assert x")], good=[good()], alone_first=[0, 2],
               alone_later=[2, 14], replay=[1, 2], polluters=["tests/test_x.py::test_p"],
               verified=(1, 3))
    d = decide(finding(), fx)
    assert d.category == "race"  # the failures came and went under identical conditions
    assert d.polluter == ()


def test_brittle_needs_two_alone_observations_that_agree():
    from flakehunt.classify import brittle

    assert not brittle(Facts(T, good=[good()], alone_first=[1, 1]))
    assert not brittle(Facts(T, good=[good()], alone_first=[2, 2], alone_later=[3, 14]))
    assert brittle(Facts(T, good=[good()], alone_first=[2, 2], alone_later=[14, 14]))
