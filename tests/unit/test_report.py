"""The JSON report (schema 1 contract) and the console report."""

from __future__ import annotations

import io
import json

from flakehunt.model import Finding, HuntResult, RunResult, RunSpec, Verdict
from flakehunt.report.console import ConsoleReporter, make_console, summary
from flakehunt.report.json import JsonReporter

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
