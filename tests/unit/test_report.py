"""The JSON report (schema 1 contract) and the console report."""

from __future__ import annotations

import io
import json
from dataclasses import replace

from flakehunt.model import (
    Failure,
    Finding,
    HuntResult,
    Outcome,
    RunResult,
    RunSpec,
    TestResult,
    Verdict,
)
from flakehunt.report.console import ConsoleReporter, make_console, summary
from flakehunt.report.json import JsonReporter, to_dict

CONTRACT = {"nodeid", "verdict", "runs", "passed", "failed", "errored", "skipped", "category",
            "suspected_fixture", "polluter", "evidence", "reproduce"}


def sample() -> HuntResult:
    flaky = Finding("t.py::test_x[[bold]a[/bold]]", Verdict.FLAKY, runs=4, passed=3, failed=1,
                    errored=0, skipped=0,
                    breakdown={"order": {"hash": (1, 2), "declared": (0, 1), "reverse": (0, 1)}},
                    category="state-leak", suspected_fixture="db", polluter=("t.py::p",),
                    evidence=("passes alone",), reproduce="python -m pytest t.py",
                    messages=("AssertionError: [red]x[/red]",))
    stable = Finding("t.py::ok", Verdict.STABLE, runs=4, passed=4, failed=0, errored=0,
                     skipped=0)
    run = RunResult(RunSpec(index=0, order="hash:5", tests=("t.py::ok",)), "ok", 0, 1.23456, (),
                    "/w/run-0000")
    return HuntResult("/r", ("t.py",), 42, (run,), (flaky, stable),
                      settings={"runs": 1}, warnings=("run 3 crashed",))


def test_json_contract():
    data = json.loads(JsonReporter().render(sample()))
    assert data["schema"] == 1
    assert (data["rootdir"], data["seed"], data["interrupted"]) == ("/r", 42, 0)
    assert data["warnings"] == ["run 3 crashed"]
    for test in data["tests"]:
        assert CONTRACT <= set(test)
    flaky, stable = data["tests"]
    assert flaky["verdict"] == "flaky" and flaky["polluter"] == ["t.py::p"]
    assert flaky["breakdown"]["order"]["hash"] == {"bad": 1, "runs": 2}
    assert flaky["failure_rate"] == 0.25
    assert stable["polluter"] is None and stable["evidence"] == []
    [run] = data["runs"]
    assert run["order"] == "hash:5" and run["tests"] == ["t.py::ok"]
    assert run["duration"] == 1.235 and run["status"] == "ok"


def test_json_written_a_run_at_a_time_is_the_same_text():
    result = sample()
    failed = TestResult('t.py::x["runs": []]', Outcome.FAILED, position=2, duration=0.5,
                        failure=Failure("call", 'boom\n  "runs": []', "line 1\nline 2"))
    run = RunResult(RunSpec(index=1), "ok", 1, 2.0, (TestResult("t.py::ok", Outcome.PASSED,
                                                                position=1), failed), "/w/1")
    for runs in ((), result.runs, (*result.runs, run)):
        r = replace(result, runs=runs)
        chunks = list(JsonReporter().chunks(r))
        assert "".join(chunks) == json.dumps(to_dict(r), indent=2) + "\n"
        assert len(chunks) == (1 if not runs else len(runs) + 2)


def test_console_shows_ids_and_messages_verbatim(monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")  # rich sizes from the environment / tty
    buf = io.StringIO()
    ConsoleReporter(make_console(file=buf)).show(sample())
    text = buf.getvalue()
    assert "[bold]a[/bold]" in text.replace("\n", "")  # not taken as markup
    assert "AssertionError: [red]x[/red]" in text
    assert "polluter: t.py::p" in text
    assert "warning: run 3 crashed" in text
    assert summary(sample()) == "1 flaky, 1 stable in 1 runs (seed 42)"
