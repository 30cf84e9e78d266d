"""The CI wiring of `run`, `report` and `merge`: outputs, gate exit codes, GitHub, history."""

from __future__ import annotations

import json
import re
import sqlite3
import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest
import samples
from helpers import run_main

from flakehunt import app
from flakehunt.model import GateResult
from flakehunt.report.json import JsonReporter


@pytest.fixture
def hunted(monkeypatch, tmp_path):
    """`run` hunts nothing: it gets the sample result (its shard setting as asked)."""
    monkeypatch.setenv("COLUMNS", "120")
    for var in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITHUB_WORKSPACE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    calls = []

    def fake_hunt(settings, progress=None):
        calls.append(settings)
        shard = "/".join(map(str, settings.shard)) if settings.shard else None
        base = samples.result()
        return replace(base, settings={**base.settings, "shard": shard})

    monkeypatch.setattr(app, "hunt", fake_hunt)
    return calls


def test_run_writes_every_output_and_records_history(hunted, tmp_path, capsys):
    code, out, err = run_main(["run", "--json", "r.json", "--junit-out", "r.xml", "--html",
                               "r.html", "--markdown", "r.md"], capsys)
    assert code == 1  # --fail-on flaky (the default) and two flaky tests
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["gate"]["fail_on"] == "flaky" and data["gate"]["failed"] is True
    assert ET.parse(tmp_path / "r.xml").getroot().tag == "testsuites"
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
    assert (tmp_path / "r.md").read_text().startswith("## flakehunt")
    assert "2 flaky, 1 failing" in out and "gate (--fail-on flaky): failed" in err
    assert "::" not in out.split("2 flaky")[-1]  # no annotations outside GitHub Actions
    db = sqlite3.connect(tmp_path / ".flakehunt" / "history.db")
    assert db.execute("SELECT count(*) FROM hunts").fetchone()[0] == 1
    db.close()


def test_fail_on_new_with_quarantine_and_never(hunted, tmp_path, capsys):
    (tmp_path / "known-flakes.toml").write_text(
        f'[[flake]]\ntest = "{samples.RACE}"\nowner = "@al"\nreason = "r"\n'
        "expires = 2999-01-01\n")
    code, _, err = run_main(["run", "--fail-on", "new", "--no-history"], capsys)
    assert code == 1 and "1 flaky test(s) fail it" in err and "1 quarantined" in err
    (tmp_path / "all.toml").write_text(
        (tmp_path / "known-flakes.toml").read_text()
        + f"[[flake]]\ntest = {json.dumps(samples.HOSTILE_ID)}\nowner = \"@b\"\n"
          'reason = "r"\nexpires = 2999-01-01\n')
    code, _, err = run_main(["run", "--fail-on", "new", "--known-flakes", "all.toml",
                             "--no-history"], capsys)
    assert code == 0 and "gate (--fail-on new): passed; 2 quarantined" in err
    code, _, _ = run_main(["run", "--fail-on", "never", "--no-history"], capsys)
    assert code == 0
    before = len(hunted)
    code, _, err = run_main(["run", "--known-flakes", "missing.toml"], capsys)
    assert code == 2 and "not found" in err and len(hunted) == before  # checked first


def test_under_github_actions(hunted, tmp_path, capsys, monkeypatch):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_WORKSPACE", "/")
    code, out, err = run_main(["run", "--no-history"], capsys)
    assert code == 1
    assert summary.read_text().startswith("## flakehunt: 2 flaky")
    lines = out.splitlines()
    token = lines[0].removeprefix("::stop-commands::")
    end = lines.index(f"::{token}::")
    annotations = lines[end + 1:]
    assert [a.split(" ")[0] for a in annotations] == ["::error", "::error"]
    # the test's own text does start a line with '::' (a newline in its evidence), but only
    # inside the stop-commands guard, where the runner runs no command
    assert any(line.startswith("::set-output") for line in lines[1:end])
    assert not [line for line in lines[:1] + lines[end:] if not line.startswith(
        ("::stop-commands::", f"::{token}::", "::error file="))]
    # with the JSON on stdout, the annotations go to stderr
    code, out, err = run_main(["run", "--no-history", "--json", "-"], capsys)
    assert json.loads(out)["gate"]["failed"] is True
    assert sum(line.startswith("::error ") for line in err.splitlines()) == 2
    code, out, _ = run_main(["run", "--no-history", "--github", "off"], capsys)
    lines = out.splitlines()
    assert lines[0].startswith("::stop-commands::")  # still guarded: it runs under Actions
    assert lines[-1] == "::" + lines[0].split("::")[2] + "::"  # and no annotation after


def test_output_errors(hunted, tmp_path, capsys):
    code, _, err = run_main(["run", "--json", "-", "--html", "-"], capsys)
    assert code == 2 and "only one report can go to stdout" in err
    assert not hunted  # refused before any hunt
    code, _, err = run_main(["run", "--no-history", "--junit-out", "no/dir/j.xml"], capsys)
    assert code == 4 and "cannot write no/dir/j.xml" in err


def test_a_shard_is_not_recorded_but_its_merge_is(hunted, tmp_path, capsys):
    code, _, _ = run_main(["run", "--shard", "1/2", "--json", "s1.json"], capsys)
    assert code == 1 and hunted[-1].shard == (1, 2)
    assert not (tmp_path / ".flakehunt" / "history.db").exists()
    code, _, err = run_main(["run", "--shard", "3/2"], capsys)
    assert code == 2 and "--shard takes i/n" in err
    code, _, err = run_main(["merge", "s1.json", "--fail-on", "never", "--html", "m.html"],
                            capsys)
    assert code == 0, err
    assert "merged 1 of 2 shards" in (tmp_path / "m.html").read_text()
    assert (tmp_path / ".flakehunt" / "history.db").exists()
    code, _, err = run_main(["merge", "s1.json", "s1.json"], capsys)
    assert code == 2 and "given twice" in err


def test_report_rerenders_a_saved_result(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    saved = tmp_path / "saved.json"
    result = replace(samples.result(), gate=GateResult("new", blocking={samples.RACE: "new"}))
    saved.write_text(JsonReporter().render(result))
    code, out, err = run_main(["report", str(saved), "--junit-out", "j.xml", "--markdown", "-"],
                              capsys)
    assert code == 0, err
    assert out.startswith("## flakehunt") and "fails the gate\\: new" in out
    assert "2 flaky, 1 failing" in err  # the console report moved to stderr
    props = {p.get("name"): p.get("value") for p in ET.parse(tmp_path / "j.xml").iter("property")}
    assert props["flakehunt.category"] in ("state-leak", "race")
    again = tmp_path / "again.json"
    assert run_main(["report", str(saved), "--json", str(again)], capsys)[0] == 0
    assert json.loads(again.read_text()) == json.loads(saved.read_text())
    code, _, err = run_main(["report", str(tmp_path / "nope.json")], capsys)
    assert code == 2 and "cannot read" in err


def test_errors_are_guarded_under_github_actions(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    bad = tmp_path / "x.json"
    bad.write_text("::error::not json")
    code, _, err = run_main(["report", str(bad)], capsys)
    assert code == 2
    first, message, last = err.splitlines()
    assert re.fullmatch(r"::stop-commands::[0-9a-f]{32}", first)
    assert "is not JSON" in message and last == "::" + first.split("::")[2] + "::"
