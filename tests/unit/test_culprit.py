"""Naming the culprit, pure: pytest's fixtures are routes, what the failing path reads
comes first, a culprit is verified only by a reset that made the victim pass, and a
race hidden by a repeated random seed is told by other seeds."""

from __future__ import annotations

import json

from flakehunt.classify import Facts, decide
from flakehunt.classify import culprit as blame
from flakehunt.classify.followup import check_culprit, reseed
from flakehunt.model import Failure, Finding, Outcome, RunResult, RunSpec, TestResult, Verdict

T, P = "tests/test_x.py::test_victim", "tests/test_x.py::test_polluter"


def finding() -> Finding:
    return Finding(nodeid=T, verdict=Verdict.FLAKY, runs=20, passed=12, failed=8, errored=0,
                   skipped=0, breakdown={})


def execution(bad: bool, evidence: dict | None = None, tests: tuple[str, ...] = (P, T),
              seed: int = 0) -> tuple[RunResult, TestResult]:
    rs = [TestResult(t, Outcome.PASSED, position=i + 1) for i, t in enumerate(tests[:-1])]
    me = TestResult(T, Outcome.FAILED if bad else Outcome.PASSED, position=len(tests),
                    failure=Failure("call", "assert 1 == 0") if bad else None,
                    evidence=evidence or {})
    spec = RunSpec(index=1, tests=tests, random_seed=seed)
    return RunResult(spec, "ok", int(bad), 1.0, (*rs, me), "/tmp"), me


COUNTERS = {"what": "store.service.store.counters", "kind": "len", "before": "0 entries",
            "after": "1 entry", "by": P}
ENTRIES = {"what": "store.service.store._entries", "kind": "len", "before": "0 entries",
           "after": "1 entry", "by": P}


def leak_facts(reads: list[str]) -> Facts:
    anatomy = {"phase": "call", "reads": reads, "involved": {"caplog": "x"},
               "routes": {"caplog": "`caplog`.handler is `h` in emit()"}}
    fixtures = [{"name": "caplog", "scope": "function", "fresh": True}]
    fx = Facts(T, bad=[execution(True, {"fixtures": fixtures, "failure_anatomy": [anatomy]})],
               good=[execution(False, {"fixtures": fixtures}, tests=(T,))],
               alone_first=[0, 3], replay=[2, 2], polluters=[P], verified=(3, 3))
    fx.leaked = [COUNTERS, ENTRIES]
    return fx


def test_what_the_failing_path_reads_is_named_first():
    assert blame.ranked(leak_facts(["get", "_entries"]))[0] == ENTRIES
    assert blame.ranked(leak_facts(["get"]))[0] == COUNTERS  # nothing read: snapshot order


def test_a_pytest_fixture_is_the_route_never_the_suspect():
    d = decide(finding(), leak_facts(["_entries"]))
    assert d.category == "state-leak"
    assert d.fixture is None  # caplog is pytest's: named only as the route
    assert any("handed over through `caplog`" in line for line in d.evidence)
    assert d.culprit is not None and d.culprit.target == ENTRIES["what"]
    assert not d.culprit.verified


def test_reset_requests_name_the_item_and_the_test():
    fx = leak_facts(["_entries"])
    fx.leaked.append({"what": "os.environ", "kind": "env", "change": "added ['MODE']",
                      "keys": ["MODE"], "by": P})
    fx.leaked.append({"what": "<sys.path>", "kind": "len", "by": P})
    requests = blame.reset_requests(fx, most=5)
    assert [c["what"] for c, _ in requests] == [ENTRIES["what"], COUNTERS["what"],
                                                 "os.environ"]
    assert json.loads(requests[0][1]) == {"kind": "global", "target": ENTRIES["what"],
                                          "before": T}
    assert json.loads(requests[2][1])["keys"] == ["MODE"]


def drive(chain, answer):
    """Run a follow-up chain, each step's specs answered by ``answer(spec)``."""
    specs = []
    try:
        step = next(chain)
        while True:
            specs += [s for _, s in step]
            step = chain.send([answer(s) for _, s in step])
    except StopIteration:
        return specs


def run_of(spec: RunSpec, bad: bool) -> RunResult:
    me = TestResult(T, Outcome.FAILED if bad else Outcome.PASSED, position=2)
    return RunResult(spec, "ok", int(bad), 1.0, (TestResult(P, Outcome.PASSED, position=1),
                                                 me), "/tmp")


def test_verified_only_when_resetting_the_item_made_the_victim_pass():
    fx = leak_facts(["get"])  # reads nothing telling: counters is tried first
    fx.repro_spec = RunSpec(index=0, tests=(P, T))
    specs = drive(check_culprit(fx),
                  lambda s: run_of(s, bad="_entries" not in (s.reset or "")))
    k, n = fx.verified
    assert k == n and n > 1
    # counters: failed at once; _entries: passed as often as the reproducer failed (n/n)
    assert len(specs) == 1 + n and all(s.purpose == "reset" for s in specs)
    assert fx.reset_failed == [COUNTERS] and fx.reset_item == ENTRIES and fx.reset_passed
    assert fx.reset_passes == n
    d = decide(finding(), fx)
    assert d.culprit is not None and d.culprit.verified
    assert d.culprit.target == ENTRIES["what"]
    text = "\n".join(d.evidence)
    assert "verified: with store.service.store._entries reset alone" in text
    assert f"it passed {n}/{n} runs" in text
    assert "store.service.store.counters reset alone to its value before the polluter, " \
           "it still failed" in text


def test_one_lucky_pass_with_a_reset_verifies_nothing():
    # a test that fails now and then, whatever is reset: it passes once, then fails
    fx = leak_facts(["get"])
    fx.repro_spec = RunSpec(index=0, tests=(P, T))
    answers = iter([False, True, False, True])  # per reset run: failed?
    specs = drive(check_culprit(fx), lambda s: run_of(s, bad=next(answers)))
    assert len(specs) == 4
    assert fx.reset_failed == [COUNTERS, ENTRIES] and not fx.reset_passed
    assert decide(finding(), fx).culprit is None or not decide(finding(), fx).culprit.verified


def test_no_reset_without_a_reproducer_that_failed_k_of_k():
    fx = leak_facts(["_entries"])
    fx.repro_spec, fx.verified = RunSpec(index=0, tests=(P, T)), (2, 3)
    assert drive(check_culprit(fx), lambda s: run_of(s, False)) == []
    assert decide(finding(), fx).culprit is None  # an unproven polluter: no culprit at all


def test_other_seeds_tell_a_random_delay_from_an_order_effect():
    # the same seeds fail every time (its replays), alone it never failed first
    fx = Facts(T, bad=[execution(True, tests=("t::a", T), seed=5)],
               good=[execution(False, tests=(T, "t::a"), seed=6)],
               alone_first=[0, 2], alone_later=[0, 7], replay=[2, 2])
    specs = drive(reseed(fx), lambda s: run_of(s, bad=s.random_seed == 5))
    assert len(specs) == 2 and len({s.random_seed for s in specs}) == 2
    assert all(s.tests == ("t::a", T) for s in specs)  # the same order
    d = decide(finding(), fx)
    assert d.category == "race"
    assert any("other random and hash seeds: failed 0/2; the seeds moved it" in line
               for line in d.evidence)


def test_background_task_of_a_plugin_fixture_is_not_the_race_fixture():
    tasks = [{"task": "Runner.run", "user": False, "fixture": "",
              "via": "_function_scoped_runner", "test": T},
             {"task": "Link.heartbeat", "user": True, "fixture": "link", "test": T}]
    ev = {"fixtures": [{"name": "link", "scope": "function", "user": True}],
          "failure_anatomy": [{"phase": "call", "tasks_from_fixtures": tasks,
                               "involved": {"_function_scoped_runner": "x"}}]}
    fx = Facts(T, bad=[execution(True, ev, tests=(T,))], good=[execution(False, tests=(T,))],
               alone_first=[1, 3])
    d = decide(finding(), fx)
    assert (d.category, d.fixture) == ("race", "link")


def test_a_reload_comes_before_what_it_replaced_and_is_reset_whole():
    fx = leak_facts(["FakeDatetime"])
    fx.leaked = [{"what": "fg.api.FakeDatetime", "kind": "id", "before": "the class",
                  "after": "another class (replaced)", "by": P},
                 {"what": "fg.api", "kind": "reload", "before": "absent",
                  "after": "reloaded 1 time", "by": P}]
    assert [c["what"] for c in blame.ranked(fx)] == ["fg.api", "fg.api.FakeDatetime"]
    # the module's globals as they were, not the classes it replaced one by one
    ((change, request),) = blame.reset_requests(fx)
    assert json.loads(request) == {"kind": "module", "target": "fg.api", "before": T}
    d = decide(finding(), fx)
    assert d.hint.startswith("don't reload fg.api in a test")
    assert d.culprit is not None and (d.culprit.kind, d.culprit.target) == ("reload", "fg.api")
