"""The decision table's shape: its rows in order, each row the first to match a crafted
case and deciding what it should, earlier rows winning, the fallback last."""

from __future__ import annotations

import pytest

from flakehunt.classify import Facts, decide, rules
from flakehunt.classify.rules import RULES, Decision, Rule, case
from flakehunt.model import (
    Category,
    Failure,
    Finding,
    Outcome,
    RunResult,
    RunSpec,
    TestResult,
    Verdict,
)

T = "tests/test_x.py::test_victim"
P = "tests/test_x.py::test_polluter"
CLOSED = "RuntimeError: Event loop is closed"
#: every failure is the teardown error of module-scoped `db`
TEARDOWN = {"fixtures": [{"name": "db", "scope": "module", "user": True}],
            "failure_anatomy": [{"phase": "teardown", "raised_in_fixture": "db"}]}


def finding() -> Finding:
    return Finding(T, Verdict.FLAKY, runs=20, passed=12, failed=8, errored=0, skipped=0,
                   breakdown={"workers": {"0": (8, 15), "2": (0, 5)}})


def bad(message: str, evidence: dict | None = None, phase: str = "call",
        workers: int = 0) -> tuple[RunResult, TestResult]:
    r = TestResult(T, Outcome.FAILED if phase == "call" else Outcome.ERROR, position=3,
                   failure=Failure(phase, message, message), evidence=evidence or {})
    return RunResult(RunSpec(index=1, workers=workers), "ok", 1, 1.0, (r,), "/tmp"), r


def good() -> tuple[RunResult, TestResult]:
    r = TestResult(T, Outcome.PASSED, position=2)
    return RunResult(RunSpec(index=2), "ok", 0, 1.0, (r,), "/tmp"), r


#: per row of the table, facts it is the first row to match, and what it must decide
CASES = {
    "wide-teardown, loop signature": (
        Facts(T, bad=[bad(CLOSED, TEARDOWN, phase="teardown")], good=[good()]),
        Category.LOOP_CLOSED, "db", "fixture-teardown"),
    "wide-teardown": (
        Facts(T, bad=[bad("ValueError: boom", TEARDOWN, phase="teardown")], good=[good()],
              alone_later=[3, 14]),
        Category.UNKNOWN, "db", "fixture-teardown"),
    "lifecycle signature": (
        Facts(T, bad=[bad(CLOSED)], good=[good()], polluters=[P], verified=(3, 3)),
        Category.LOOP_CLOSED, None, None),
    "polluter": (
        Facts(T, bad=[bad("assert 3 == 0")], good=[good()], alone_first=[0, 2],
              alone_later=[3, 14], polluters=[P], verified=(3, 3)),
        Category.STATE_LEAK, None, None),
    "state-setter": (
        Facts(T, bad=[bad("assert None")], good=[good()], alone_first=[2, 2],
              alone_later=[3, 14], setters=[P]),
        Category.STATE_LEAK, None, None),
    "cross-worker": (
        Facts(T, bad=[bad("AssertionError", workers=2)], good=[good()], alone_first=[0, 2],
              alone_later=[3, 14], replay=[1, 2], serial_replay=[0, 2]),
        Category.RACE, None, None),
    "nondeterministic": (
        Facts(T, bad=[bad("assert x")], good=[good()], alone_first=[0, 2],
              alone_later=[3, 14]),
        Category.RACE, None, None),
    "order-dependent, no polluter": (
        Facts(T, bad=[bad("assert x")], good=[good()], alone_first=[0, 2], replay=[2, 2]),
        Category.UNKNOWN, None, None),
    "fallback": (
        Facts(T, bad=[bad("assert x")], good=[good()], alone_first=[0, 2]),
        Category.UNKNOWN, None, None),
}


def first_rule(fx: Facts) -> str:
    c = case(finding(), fx)
    return next(rule.name for rule in RULES if rule.applies(c))


def test_the_rows_in_their_order():
    assert [rule.name for rule in RULES] == [
        "wide-teardown, loop signature", "wide-teardown", "lifecycle signature", "polluter",
        "state-setter", "cross-worker", "nondeterministic", "order-dependent, no polluter",
        "fallback"]


@pytest.mark.parametrize("name", list(CASES))
def test_each_row_is_the_first_match_of_its_case_and_decides_its_category(name):
    fx, category, fixture, problem = CASES[name]
    assert first_rule(fx) == name
    d = decide(finding(), fx)
    assert d.category is category
    assert d.problem == problem
    if fixture is not None:
        assert d.fixture == fixture


LAST_ROWS = ("nondeterministic", "order-dependent, no polluter", "fallback")


@pytest.mark.parametrize("name", [n for n in CASES if n not in LAST_ROWS])
def test_a_later_row_matches_too_so_the_order_decides(name):
    """The cases overlap on purpose: a later row (not the fallback) matches as well."""
    c = case(finding(), CASES[name][0])
    matching = [rule.name for rule in RULES if rule.applies(c)]
    assert matching[0] == name
    assert [m for m in matching[1:] if m != "fallback"]


def test_the_fallback_is_last_and_matches_anything():
    assert RULES[-1].name == "fallback"
    assert RULES[-1].applies(case(finding(), Facts(T)))
    assert not any(rule.applies(case(finding(), Facts(T))) for rule in RULES[:-1])
    assert decide(finding(), Facts(T)).category is Category.UNKNOWN


def test_a_culprit_not_reproduced_k_of_k_does_not_reach_the_culprit_rows():
    fx = Facts(T, bad=[bad("assert 3 == 0")], good=[good()], alone_first=[0, 2],
               alone_later=[3, 14], polluters=[P], verified=(1, 3))
    assert first_rule(fx) == "nondeterministic"
    assert decide(finding(), fx).polluter == ()


def test_a_new_row_extends_the_table(monkeypatch):
    def flagged(c: rules.Case) -> Decision:
        return Decision(Category.RACE, "clock", ("a newcomer's rule",), "freeze the clock")

    row = Rule("newcomer", lambda c: c.fx.alone_first == [0, 2], flagged)
    monkeypatch.setattr(rules, "RULES", (*RULES[:-1], row, RULES[-1]))
    fx = CASES["fallback"][0]
    assert decide(finding(), fx).evidence == ("a newcomer's rule",)
    assert decide(finding(), CASES["nondeterministic"][0]).category is Category.RACE
