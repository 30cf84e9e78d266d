"""Honest verdicts, with crafted facts and a fake suite (no processes): a test that failed
every sweep run is tried alone and in another order before it is called failing; an
order-dependent test is classified state-leak with its bisected polluter; an `unknown`
finding's words never contradict its evidence."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_classify_runs import POLLUTER, VICTIM, FakeSuite
from test_classify_table import bad, finding, good

from flakehunt import verdicts
from flakehunt.classify import Facts, classify, decide, order_dependent
from flakehunt.classify.recheck import other_order
from flakehunt.model import (
    Category,
    Failure,
    Outcome,
    RunResult,
    RunSpec,
    TestResult,
    Verdict,
)

T = "tests/test_x.py::test_victim"
BROKEN = "t::broken"


# -- order dependence -------------------------------------------------------------------------

@pytest.mark.parametrize("fx", [
    # alone repeats mixed: another question, not whether earlier tests break it
    Facts(T, alone_first=[0, 2], alone_later=[3, 14], replay=[2, 2]),
    # shown by the sweep's suspects, no replay needed
    Facts(T, alone_first=[0, 1], suspect_run=[1, 1]),
    # suspects did not reproduce it, the whole failing order did
    Facts(T, alone_first=[0, 1], suspect_run=[0, 1], replay=[2, 2]),
    # a failure under xdist: the same tests before it in one process
    Facts(T, alone_first=[0, 1], serial_replay=[2, 2]),
], ids=["repeats-mixed", "suspects", "replay-after-suspects", "serial-replay"])
def test_order_dependent_whenever_an_order_it_failed_in_fails_again(fx):
    assert order_dependent(fx)


@pytest.mark.parametrize("fx", [
    Facts(T, alone_first=[1, 2], replay=[2, 2]),  # failed alone
    Facts(T, alone_first=[0, 2], replay=[1, 2]),  # identical replay passed: timing
    Facts(T, alone_first=[0, 0], replay=[2, 2]),  # never run alone: not shown
])
def test_not_order_dependent(fx):
    assert not order_dependent(fx)


def test_order_dependent_with_a_proven_polluter_is_a_state_leak_even_if_repeats_are_mixed():
    fx = Facts(T, bad=[bad("assert 3 == 0")], good=[good()], alone_first=[0, 2],
               alone_later=[3, 14], replay=[2, 2], polluters=["t::p"], verified=(3, 3))
    d = decide(finding(), fx)
    assert d.category is Category.STATE_LEAK and d.polluter == ("t::p",)


# -- unknown says what was tried, consistently ------------------------------------------------

CONTRADICTIONS = ("not reproduced", "never failed in a follow-up")


@pytest.mark.parametrize("fx, says", [
    (Facts(T, bad=[bad("assert x")], good=[good()], alone_first=[0, 2], replay=[2, 2],
           searched=["a", "b", "c"]),
     "order-dependent: never failed first in a fresh process, failed every time an order "
     "it failed in ran again; no single test before it proven to break it (bisecting the "
     "3 test(s) before it named none: it may take several of them together)"),
    (Facts(T, bad=[bad("assert x")], good=[good()], alone_first=[0, 2], replay=[2, 2],
           polluters=["t::p"], verified=(1, 3)),
     "(t::p (bisected) made it fail only 1/3 times run before it)"),
    (Facts(T, bad=[bad("assert x")], good=[good()], alone_first=[3, 3], alone_later=[21, 21]),
     "no rule matched: it failed alone every time (3/3 first runs in a fresh process) yet "
     "passed in 1 sweep run(s)"),
    (Facts(T, bad=[bad("assert x")], good=[good()]),
     "no rule matched: no follow-up run showed its outcome"),
    (Facts(T, bad=[bad("assert x")], good=[good()], alone_first=[0, 2], alone_later=[0, 14]),
     "no rule matched: not reproduced: it never failed in a follow-up run"),
])
def test_unknown_says_what_was_tried_and_never_contradicts_it(fx, says):
    d = decide(finding(), fx)
    assert d.category is Category.UNKNOWN
    assert says in d.evidence[0]
    failed_somewhere = any(line.split("failed ")[1][0] != "0" for line in d.evidence[1:]
                           if "failed " in line and "/" in line)
    if failed_somewhere:
        assert not any(c in d.evidence[0] for c in CONTRADICTIONS)


# -- a test that failed every sweep run -------------------------------------------------------

class PollutedFirst(FakeSuite):
    """The polluter runs first in every sweep run: the victim fails every one of them;
    BROKEN fails everywhere."""

    def order(self, spec: RunSpec) -> list[str]:
        rest = [t for t in super().order(spec) if t != POLLUTER]
        return [POLLUTER, *rest]

    def one(self, spec: RunSpec) -> RunResult:
        run = super().one(spec)
        results = tuple(replace(r, outcome=Outcome.FAILED, failure=Failure("call", "boom"))
                        if r.nodeid == BROKEN else r for r in run.results)
        run = replace(run, results=results)
        self.runs[-1] = run
        return run


def hunt(seed: int = 1):
    suite = PollutedFirst(20, seed, race_rate=0.0)
    suite.tests.append(BROKEN)
    runs = suite.sweep(10)
    found = verdicts.findings(runs, suite.tests)
    assert {f.nodeid: f.verdict for f in found}[VICTIM] is Verdict.FAILING
    return suite, {f.nodeid: f for f in classify(found, runs, suite, seed)}


@pytest.mark.parametrize("seed", range(3))
def test_failing_every_run_but_passing_in_another_order_is_flaky_with_its_polluter(seed):
    suite, by_id = hunt(seed)
    victim = by_id[VICTIM]
    assert victim.verdict is Verdict.FLAKY
    assert victim.category == "state-leak"
    assert victim.polluter == (POLLUTER,)
    assert victim.evidence[0].startswith("failed every sweep run (10/10); alone: failed 0/")
    assert victim.evidence[0].endswith("it passed there: order-dependent, flaky, not failing")
    assert victim.reproduce == f"{POLLUTER} {VICTIM}"  # polluter + test: short


def test_failing_alone_and_in_another_order_stays_failing_and_says_so():
    suite, by_id = hunt()
    broken = by_id[BROKEN]
    assert broken.verdict is Verdict.FAILING and broken.category is None
    assert broken.evidence == (
        "failed every sweep run (10/10); alone: failed 1/1 first runs in a fresh process; "
        "in another order (a sweep run's, reversed): failed 1/1: it failed there too: failing",)
    # one shared run in the other order, one alone run per test that failed every run
    assert suite.by_purpose.get("reorder") == 1


def test_no_failing_test_no_recheck():
    suite = FakeSuite(10, 1, race_rate=0.0)
    runs = suite.sweep(6)
    suite.by_purpose.clear()
    classify(verdicts.findings(runs, suite.tests), runs, suite, 1)
    assert "reorder" not in suite.by_purpose


def test_other_order_reverses_a_serial_hash_ordered_sweep_run():
    def sweep_run(i: int, order: str, workers: int = 0) -> RunResult:
        rs = tuple(TestResult(t, Outcome.PASSED, position=p + 1)
                   for p, t in enumerate(["a", "b", "c"]))
        return RunResult(RunSpec(index=i, order=order, workers=workers), "ok", 0, 1.0, rs, "/")

    spec = other_order([sweep_run(0, "declared"), sweep_run(1, "reverse"),
                        sweep_run(2, "hash:5", workers=2), sweep_run(3, "hash:9")])
    assert spec is not None
    assert spec.tests == ("c", "b", "a") and spec.workers == 0 and spec.order == "declared"
    assert spec.random_seed == RunSpec(index=3).random_seed
    assert other_order([]) is None
