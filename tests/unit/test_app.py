"""The application layer's seams: options -> typed settings -> app; the gate through JSON."""

from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import samples
from click.testing import CliRunner

from flakehunt import app, gate
from flakehunt.app import GateSettings, Outputs, RunRequest
from flakehunt.cli import cli
from flakehunt.errors import UsageError
from flakehunt.model import GateResult, KnownFlake
from flakehunt.report.json import JsonReporter, gate_dict, to_dict
from flakehunt.report.load import from_dict
from flakehunt.settings import HuntSettings


@pytest.fixture
def calls(monkeypatch, tmp_path):
    """app.run, app.merge and app.report record what the command line handed them."""
    monkeypatch.chdir(tmp_path)
    seen: list[tuple] = []
    monkeypatch.setattr(app, "run", lambda request: seen.append(("run", request)) or 1)
    monkeypatch.setattr(app, "merge", lambda *a: seen.append(("merge", *a)) or 0)
    monkeypatch.setattr(app, "report", lambda *a: seen.append(("report", *a)))
    return seen


def test_run_options_become_one_typed_request(calls, tmp_path):
    result = CliRunner().invoke(cli, [
        "run", "tests/a.py", "--runs", "3", "--seed", "5", "--workers", "0,4", "--dist",
        "load,worksteal", "--budget", "2m", "--shard", "1/3", "--no-evidence", "--no-progress",
        "--json", "r.json", "--markdown", "-", "--github", "off", "--fail-on", "never",
        "--known-flakes", "k.toml", "--history", "h.db", "--no-history", "--changed",
        "--base", "main", "--", "-x"])
    assert result.exit_code == 1, result.output  # what app.run returned
    [(name, request)] = calls
    assert name == "run" and isinstance(request, RunRequest)
    assert request.outputs == Outputs(json_path="r.json", markdown="-", github_mode="off")
    assert request.gate == GateSettings("never", "k.toml", Path("h.db"), record=False)
    assert (request.changed, request.base, request.progress) == (True, "main", False)
    assert request.settings == HuntSettings(
        selection=("tests/a.py",), pytest_args=("-x",), runs=3, seed=5, workers=(0, 4),
        dist=("load", "worksteal"), budget=120.0, shard=(1, 3), evidence=False,
        python=sys.executable, cwd=tmp_path)


def test_the_defaults_are_the_settings_defaults(calls, tmp_path):
    assert CliRunner().invoke(cli, ["run"]).exit_code == 1
    request = calls[-1][1]
    assert request.settings == HuntSettings(cwd=tmp_path)
    assert request.outputs == Outputs() and request.gate == GateSettings()
    assert (request.changed, request.base, request.progress) == (False, None, True)


def test_merge_and_report_get_typed_outputs(calls):
    runner = CliRunner()
    assert runner.invoke(cli, ["merge", "a.json", "b.json", "--html", "m.html",
                               "--fail-on", "new"]).exit_code == 0
    assert calls[-1] == ("merge", ("a.json", "b.json"), Outputs(html_path="m.html"),
                         GateSettings(fail_on="new"))
    assert runner.invoke(cli, ["report", "r.json", "--junit-out", "j.xml"]).exit_code == 0
    assert calls[-1] == ("report", "r.json", Outputs(junit_out="j.xml"))


@pytest.mark.parametrize("args, message", [
    (["--workers", "0,-2"], "--workers: give counts >= 0"),
    (["--profiles", ","], "--profiles: give at least one name"),
    (["--dist", ","], "--dist: give at least one name"),
    (["--dist", "bogus"], "unknown --dist mode 'bogus'"),
    (["--run-timeout", "nan"], "--run-timeout must be positive"),
    (["--shard", "2/4", "--runs", "3"], "3 runs cannot be split 4 ways"),
])
def test_settings_validate_decides_and_the_cli_exits_2(calls, args, message):
    result = CliRunner().invoke(cli, ["run", *args])
    assert result.exit_code == 2 and message in result.output
    assert not calls  # refused before the application ran


def test_run_gates_publishes_and_skips_history_for_a_shard(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    hunted = []
    monkeypatch.setattr(app, "hunt", lambda settings, progress: hunted.append(settings)
                        or samples.result())
    (tmp_path / "k.toml").write_text(f'[[flake]]\ntest = "{samples.RACE}"\nowner = "@al"\n'
                                     'reason = "r"\nexpires = 2999-01-01\n')
    request = RunRequest(settings=HuntSettings(shard=(1, 2)), outputs=Outputs(json_path="r.json"),
                         gate=GateSettings("new", "k.toml", tmp_path / "h.db"), progress=False)
    assert app.run(request) == 1  # the hostile test is new
    assert hunted == [request.settings]
    saved = json.loads((tmp_path / "r.json").read_text())["gate"]
    assert saved["blocking"] == {samples.HOSTILE_ID: "new"}
    assert [q["nodeid"] for q in saved["quarantined"]] == [samples.RACE]
    assert "gate (--fail-on new): failed" in capsys.readouterr().err
    assert not (tmp_path / "h.db").exists()  # a shard is recorded by its merge
    assert app.run(RunRequest(gate=GateSettings("never", history=tmp_path / "h.db"),
                              progress=False)) == 0
    assert (tmp_path / "h.db").exists()


def test_a_bad_known_flakes_file_fails_before_the_hunt(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(app, "hunt", lambda *a: pytest.fail("hunted"))
    with pytest.raises(UsageError, match="not found"):
        app.run(RunRequest(gate=GateSettings(known_flakes="missing.toml")))
    with pytest.raises(UsageError, match="--base goes with --changed"):
        app.run(RunRequest(base="main"))


# -- the gate: a dataclass in the result, the same JSON as before -------------------------
def test_the_gate_survives_a_saved_report():
    verdict = GateResult("new", blocking={samples.HOSTILE_ID: "new", samples.RACE: "worse"},
                         quarantined=(KnownFlake(samples.RACE, "@al", "r", dt.date(2099, 1, 2),
                                                 0.25),),
                         stale=(samples.OK,))
    result = samples.result()
    saved = json.loads(JsonReporter().render(replace(result, gate=verdict)))
    assert saved["gate"] == {
        "fail_on": "new", "failed": True,
        "blocking": {samples.HOSTILE_ID: "new", samples.RACE: "worse"},
        "new": [samples.HOSTILE_ID],
        "quarantined": [{"test": samples.RACE, "owner": "@al", "reason": "r",
                         "expires": "2099-01-02", "max_failure_rate": 0.25,
                         "nodeid": samples.RACE}],
        "stale": [samples.OK], "message": verdict.message()}
    again = from_dict(saved)
    assert again.gate == verdict and to_dict(again) == saved
    assert from_dict({**saved, "gate": None}).gate is None
    assert to_dict(result)["gate"] is None  # not evaluated


def test_evaluate_returns_the_model_dataclass():
    verdict = gate.evaluate(samples.result(), "never", {}, dt.date(2025, 1, 1))
    assert isinstance(verdict, GateResult) and not verdict.failed and verdict.new == ()
    assert gate_dict(verdict)["message"] == "gate (--fail-on never): passed"
