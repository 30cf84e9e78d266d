"""A hunt result built by hand, for the report, gate, history and merge tests.

Built with the real verdict code from hand-written runs, so counts and
breakdowns are what a hunt would give. One test id and its failure message
are hostile: workflow commands, URL-encoded newlines, HTML, Markdown, control
characters.
"""

from __future__ import annotations

from dataclasses import replace

from flakehunt import verdicts
from flakehunt.model import (
    Culprit,
    Failure,
    HuntResult,
    Outcome,
    RunResult,
    RunSpec,
    TestResult,
)

HOSTILE_ID = ("tests/test_evil.py::test_inject[::error::owned%0A::warning::x"
              "<script>alert(1)</script>|**b**]")
HOSTILE_MESSAGE = ("AssertionError: ::error file=a.py,line=1::pwned\n::set-output name=x::y "
                   "%0A::error::again <script>alert('x')</script> **bold** [link](http://evil) "
                   "@someone | `tick` &amp;")
HOSTILE_TEXT = "Traceback\n\x1b[31m::error::red\x1b[0m\x00 <img src=x onerror=alert(1)>\n"
RACE = "tests/test_a.py::TestA::test_race"
BROKEN = "tests/test_a.py::test_broken"
OK = "tests/test_a.py::test_ok"
SKIP = "tests/test_a.py::test_skip"
NODEIDS = (HOSTILE_ID, RACE, BROKEN, OK, SKIP)

#: run index -> tests that fail in it (and how)
BAD = {1: {HOSTILE_ID: Outcome.FAILED}, 2: {RACE: Outcome.ERROR},
       3: {HOSTILE_ID: Outcome.FAILED}}
ORDERS = ("declared", "reverse", "hash:11", "hash:12")


def failure(nodeid: str, outcome: Outcome) -> Failure:
    if nodeid == HOSTILE_ID:
        return Failure("call", HOSTILE_MESSAGE, HOSTILE_TEXT,
                       ({"type": "AssertionError", "module": "builtins", "message": "x"},))
    if outcome is Outcome.ERROR:
        return Failure("setup", "RuntimeError: Event loop is closed",
                       "E   RuntimeError: Event loop is closed",
                       ({"type": "RuntimeError", "module": "builtins", "message": "closed"},))
    return Failure("call", "assert 1 == 2", "E   assert 1 == 2",
                   ({"type": "AssertionError", "module": "builtins", "message": ""},))


def run(index: int, plan_index: int | None = None, workers: int = 0) -> RunResult:
    results = []
    for pos, nodeid in enumerate(NODEIDS):
        if nodeid == SKIP:
            outcome = Outcome.SKIPPED
        elif nodeid == BROKEN:
            outcome = Outcome.FAILED
        else:
            outcome = BAD.get(index, {}).get(nodeid, Outcome.PASSED)
        results.append(TestResult(nodeid, outcome, "main", pos, 0.25,
                                  failure(nodeid, outcome) if outcome.bad else None))
    spec = RunSpec(index=index, order=ORDERS[index % 4], random_seed=100 + index,
                   workers=workers, profile=("none", "single-core")[index % 2],
                   plan_index=index if plan_index is None else plan_index)
    return RunResult(spec, "ok", 1, 1.5, tuple(results), f"/w/run-{index:04d}")


def result(runs: int = 4, seed: int = 7) -> HuntResult:
    sweep = [run(i) for i in range(runs)]
    findings = {f.nodeid: f for f in verdicts.findings(sweep, NODEIDS)}
    findings[RACE] = replace(
        findings[RACE], category="race", suspected_fixture="websocket",
        evidence=("same order, different outcome: timing decides",),
        reproduce="python -m pytest 'tests/test_a.py::TestA::test_race' --count=8",
        fix_hint="wait for the message you expect", confidence="failure rate 25%")
    findings[HOSTILE_ID] = replace(
        findings[HOSTILE_ID], category="state-leak", suspected_fixture="db<b>",
        polluter=("tests/test_a.py::test_ok",), evidence=(HOSTILE_MESSAGE,),
        reproduce=f"python -m pytest '{HOSTILE_ID}' ```",
        culprit=Culprit("len", "app.db<b>._rows", "db<b>", "0 entries -> 2 entries"))
    settings = {"runs": runs, "seed": seed, "workers": [0], "profiles": ["none", "single-core"],
                "dist": ["load"], "selection": ["tests"], "pytest_args": [], "classify": True,
                "shard": None, "planned_runs": runs}
    return HuntResult("/repo", ("tests",), seed, tuple(sweep), tuple(findings.values()),
                      settings=settings, warnings=("run 9 crashed: <b>boom</b>",))
