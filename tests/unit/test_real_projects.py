"""benchmarks/real_projects.py: how a hunt of a real project is scored (no process runs)."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import real_projects as rp  # noqa: E402

V1, V2, P = "tests/t.py::T::test_victim", "tests/t.py::test_other", "tests/u.py::test_polluter"
PROJECT = rp.Project(name="demo", repo="o/demo", commit="0" * 40, selection=("tests",),
                     requirements=(), install=False,
                     victims=(rp.Victim(V1, "OD-Vic", (P,)), rp.Victim(V2, "OD-Vic", ())))


def finding(nodeid, verdict="flaky", category="state-leak", polluter=None, failed=3, runs=50):
    return {"nodeid": nodeid, "verdict": verdict, "category": category, "polluter": polluter,
            "failed": failed, "errored": 0, "runs": runs}


def test_a_victim_found_as_state_leak_with_a_polluter_that_fails_it_scores_ok():
    report = {"tests": [finding(V1, polluter=[P])]}
    assert rp.polluter_checks_needed(PROJECT, report) == {V1: [P]}
    rows = rp.score(PROJECT, report, {V1: {"after": "failed", "alone": "passed"}})
    row = rows[0]
    assert (row["found"], row["category_ok"], row["polluter_ok"], row["ok"]) == (
        True, True, True, True)
    assert row["polluter_known"] and row["failed"] == "3/50"
    # V2 was not reported at all: nothing found, nothing right
    assert rows[1]["verdict"] == "not reported" and not rows[1]["found"] and not rows[1]["ok"]
    assert rp.summary(rows) == {"victims": 2, "found": 1, "category_ok": 1, "polluter_ok": 1,
                                "ok": 1}


def test_a_named_polluter_is_wrong_unless_the_check_saw_it_fail_the_victim():
    report = {"tests": [finding(V1, polluter=["tests/u.py::test_innocent"])]}
    passed_after = rp.score(PROJECT, report, {V1: {"after": "passed", "alone": "passed"}})[0]
    assert passed_after["found"] and not passed_after["polluter_ok"] and not passed_after["ok"]
    assert not passed_after["polluter_known"]
    # failing alone too: the polluter is not what fails it
    brittle = rp.score(PROJECT, report, {V1: {"after": "failed", "alone": "failed"}})[0]
    assert not brittle["polluter_ok"]
    unchecked = rp.score(PROJECT, report, {})[0]
    assert not unchecked["polluter_ok"]


def test_wrong_verdict_or_category_is_not_ok():
    checks = {V1: {"after": "error", "alone": "passed"}}
    failing = rp.score(PROJECT, {"tests": [finding(V1, verdict="failing", polluter=[P])]},
                       checks)[0]
    assert not failing["found"] and failing["polluter_ok"] and not failing["ok"]
    race = rp.score(PROJECT, {"tests": [finding(V1, category="race", polluter=[P])]}, checks)[0]
    assert race["found"] and not race["category_ok"] and not race["ok"]
    unknown = rp.score(PROJECT, {"tests": [finding(V1, category=None)]}, {})[0]
    assert not unknown["category_ok"] and unknown["polluter"] == [] and not unknown["ok"]
    assert rp.polluter_checks_needed(PROJECT, {"tests": [finding(V1, category=None)]}) == {}


def test_the_shipped_data_file_lists_checked_rows():
    raw = tomllib.loads(rp.DATA.read_text())
    assert all(v["checked"] for p in raw["project"] for v in p["victim"])
    projects = rp.load()
    assert len(projects) >= 6
    for p in projects:
        assert len(p.commit) == 40 and p.selection and p.victims
        for v in p.victims:
            assert v.nodeid.startswith("tests/") and v.idoft.startswith("OD") and v.polluters


def test_the_table_has_one_line_per_victim_and_one_per_failed_set_up():
    report = {"tests": [finding(V1, polluter=[P])]}
    rows = rp.score(PROJECT, report, {V1: {"after": "failed", "alone": "passed"}})
    results = [{"project": "demo", "hunt_wall": 30.0, "plain_wall": 10.0, "ratio": 3.0,
                "rows": rows},
               {"project": "gone", "error": "set-up failed: clone", "rows": []}]
    lines = rp.table(results)
    assert len(lines) == 1 + 2 + 1
    assert "right" in lines[1] and "3.0x" in lines[1] and "not reported" in lines[2]
    assert "set-up failed" in lines[3]
    assert " 50 plain s " in lines[0]  # the default
    assert " 10 plain s " in rp.table([{**results[0], "plain_runs": 10}])[0]


def test_several_hunts_make_one_line_per_victim_with_counts():
    found = rp.score(PROJECT, {"tests": [finding(V1, polluter=[P])]},
                     {V1: {"after": "failed", "alone": "passed"}})
    missed = rp.score(PROJECT, {"tests": []}, {})
    results = [{"project": "demo", "hunt_wall": 30.0, "plain_wall": 10.0, "ratio": 3.0,
                "rows": found + missed}]
    lines = rp.table(results)
    assert len(lines) == 1 + 2
    victim_line = next(line for line in lines[1:] if V1.split("::", 1)[1] in line)
    assert " 1/2 " in victim_line


def test_a_hunt_that_wrote_no_report_says_why(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    (tmp_path / "hunt.log").write_text("starting\n/usr/bin/python3: No module named flakehunt\n")
    monkeypatch.setattr(rp, "hunt", lambda project, src, runs, seed: (0.1, {}, 1))
    got = rp.one_hunt(PROJECT, src, 50, None)
    assert got["error"] == "hunt exit 1: /usr/bin/python3: No module named flakehunt"
    assert [r["verdict"] for r in got["rows"]] == ["not reported", "not reported"]
    monkeypatch.setattr(rp, "setup", lambda project, mirror: src)
    monkeypatch.setattr(rp, "plain", lambda project, src, runs: (1.0, 0))
    res = rp.measure(PROJECT, None, 50, 1)
    assert res["error"].startswith("hunt exit 1: ")
    assert any("No module named flakehunt" in line for line in rp.table([res]))
