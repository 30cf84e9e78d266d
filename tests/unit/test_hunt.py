"""parse.parse_run on captured and hand-written run folders; settings validation."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from helpers import DATA

from flakehunt import hunt as hunt_module
from flakehunt import scheduler
from flakehunt.errors import UsageError
from flakehunt.hunt import HuntSettings, usable_profiles, validate
from flakehunt.model import Outcome, RunSpec
from flakehunt.parse import parse_run
from flakehunt.profiles import Availability

CRASH_IDS = ("test_xdist_crash.py::test_ok", "test_xdist_crash.py::test_die",
             "test_xdist_crash.py::test_ok2")


@pytest.fixture
def xdist_crash(tmp_path) -> Path:
    rundir = tmp_path / "run-0001"
    shutil.copytree(DATA / "runs" / "xdist-crash", rundir)
    return rundir


def write_events(rundir: Path, worker: str, records: list[dict]) -> None:
    rundir.mkdir(parents=True, exist_ok=True)
    with open(rundir / f"events-{worker}.jsonl", "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in records)


def end(nodeid, pos, outcome="passed", worker="main", failures=()):
    return {"e": "end", "id": nodeid, "nodeid": nodeid, "w": worker, "pos": pos,
            "outcome": outcome, "phase": "call" if outcome != "passed" else None, "dur": 0.5,
            "failures": list(failures)}


def start(nodeid, pos, worker="main"):
    return {"e": "start", "id": nodeid, "w": worker, "pos": pos, "t": 1.0}


def test_xdist_crash_run_is_parsed(xdist_crash):
    run = parse_run(RunSpec(index=1, workers=2), xdist_crash, 1, "ok", 2.0, CRASH_IDS)
    assert run.status == "crashed"  # a worker died, though pytest itself wrote the XML
    assert run.exit_code == 1
    assert run.crashed_test == "test_xdist_crash.py::test_die"
    outcomes = {(r.nodeid, r.outcome) for r in run.results}
    assert ("test_xdist_crash.py::test_ok", Outcome.PASSED) in outcomes
    assert ("test_xdist_crash.py::test_ok2", Outcome.PASSED) in outcomes
    assert ("test_xdist_crash.py::test_die", Outcome.CRASHED) in outcomes
    passed = [r for r in run.results if r.outcome is Outcome.PASSED]
    assert all(r.evidence.get("outcome") == "passed" for r in passed)  # enriched by events
    assert set(run.profile_applied) == {"main", "gw0", "gw1", "gw2"}


def test_xdist_crash_counted_once(xdist_crash):
    run = parse_run(RunSpec(index=1, workers=2), xdist_crash, 1, "ok", 2.0, CRASH_IDS)
    counts = Counter(r.nodeid for r in run.results)
    assert counts["test_xdist_crash.py::test_die"] == 1


def test_no_xdist_crash_without_xml(tmp_path):
    rundir = tmp_path / "run-0000"
    write_events(rundir, "main", [
        {"e": "session", "worker": "main", "cpus": {"requested": None}},
        start("t.py::a", 1), end("t.py::a", 1),
        start("t.py::b", 2)])
    (rundir / "output.log").write_text("line\n" * 40 + "Fatal Python error: Segmentation fault\n")
    run = parse_run(RunSpec(index=0), rundir, -11, "ok", 1.0, ("t.py::a", "t.py::b", "t.py::c"))
    assert run.status == "crashed"
    assert run.crashed_test == "t.py::b"
    by = {r.nodeid: r for r in run.results}
    assert set(by) == {"t.py::a", "t.py::b"}  # t.py::c never ran: no result at all
    assert by["t.py::a"].outcome is Outcome.PASSED
    crashed = by["t.py::b"]
    assert (crashed.outcome, crashed.worker, crashed.position) == (Outcome.CRASHED, "main", 2)
    assert crashed.failure.message == ("the run died (killed by SIGSEGV) while this test "
                                       "was running")
    assert "Fatal Python error: Segmentation fault" in crashed.failure.text
    assert "Segmentation fault" in crashed.failure.text
    assert run.note  # says why, for the hunt's warning


def test_timeout_run(tmp_path):
    rundir = tmp_path / "run-0000"
    write_events(rundir, "main", [start("t.py::hang", 1)])
    run = parse_run(RunSpec(index=0), rundir, -9, "timeout", 300.0, ("t.py::hang",))
    assert run.status == "timeout"
    [r] = run.results
    assert r.outcome is Outcome.CRASHED
    assert r.failure.message == "timed out while this test was running"


def test_unreadable_run_without_anything(tmp_path):
    rundir = tmp_path / "run-0000"
    rundir.mkdir()
    run = parse_run(RunSpec(index=0), rundir, 0, "ok", 1.0, ("t.py::a",))
    assert run.status == "unreadable"
    assert run.results == ()
    assert "missing" in run.note


def test_results_fall_back_to_events_when_xml_is_unreadable(tmp_path):
    rundir = tmp_path / "run-0000"
    fail = {"phase": "call", "chain": [{"type": "AssertionError", "module": "builtins",
                                        "message": "nope"}], "text": "trace"}
    write_events(rundir, "main", [start("t.py::a", 1), end("t.py::a", 1),
                                  start("t.py::b", 2), end("t.py::b", 2, "failed", failures=[fail]),
                                  {"e": "finish", "t": 2.0}])
    (rundir / "junit.xml").write_text("<testsuites><testsuite")  # cut
    run = parse_run(RunSpec(index=0), rundir, 1, "ok", 1.0, ("t.py::a", "t.py::b"))
    by = {r.nodeid: r for r in run.results}
    assert by["t.py::a"].outcome is Outcome.PASSED
    assert by["t.py::b"].outcome is Outcome.FAILED
    assert by["t.py::b"].failure.message == "AssertionError: nope"
    assert by["t.py::b"].failure.chain[0]["type"] == "AssertionError"
    assert run.status == "unreadable"
    assert "junit.xml" in run.note


def test_pytest_usage_error_exit_code_marks_the_run(tmp_path):
    rundir = tmp_path / "run-0000"
    rundir.mkdir()
    shutil.copy(DATA / "junit" / "phases.xml", rundir / "junit.xml")
    run = parse_run(RunSpec(index=0), rundir, 4, "ok", 1.0, ())
    assert run.status == "error"


def test_a_crash_wins_over_the_exit_code(tmp_path):
    rundir = tmp_path / "run-0000"
    shutil.copytree(DATA / "runs" / "xdist-crash", rundir)
    run = parse_run(RunSpec(index=0), rundir, 4, "ok", 1.0, CRASH_IDS)
    assert run.status == "crashed"


@pytest.mark.parametrize("settings, match", [
    (HuntSettings(runs=0), "--runs"),
    (HuntSettings(workers=()), "--workers"),
    (HuntSettings(workers=(0, -1)), "--workers"),
    (HuntSettings(profiles=("none", "warp")), "unknown profile 'warp'"),
    (HuntSettings(run_timeout=0), "--run-timeout"),
])
def test_validate(settings, match):
    with pytest.raises(UsageError, match=match):
        validate(settings)


def test_validate_accepts_the_defaults():
    validate(HuntSettings())


def test_unavailable_profile_warns_and_falls_back(monkeypatch):
    class Broken:
        name = "broken"
        description = "never works"

        def availability(self):
            return Availability(False, "none", "no such hardware")

        pins = False

        def cpus_used(self, workers):
            return max(1, workers)

        def child_args(self, cpu=None):
            return ()

    monkeypatch.setitem(hunt_module.profiles.PROFILES, "broken", Broken())
    warnings: list[str] = []
    assert usable_profiles(("broken",), warnings) == ("none",)
    assert warnings == ["profile broken unavailable here (no such hardware); its runs use none"]
    warnings.clear()
    assert usable_profiles(("none", "broken"), warnings) == ("none",)
    assert len(warnings) == 1


def test_a_deferred_profile_run_counts_a_whole_cpu_until_its_tests_start(tmp_path):
    class Started:
        waiting = True

    job = scheduler.Job(RunSpec(index=0, profile="quota-25"), tmp_path)
    assert job.slots == 1 and job.share == 0.25  # it starts at full speed
    job.process = Started()
    assert job.slots == 1  # start-up and collection at full speed
    job.process.waiting = False
    assert job.slots == 0.25
    wide = scheduler.Job(RunSpec(index=0, profile="quota-25", workers=2), tmp_path)
    wide.process = Started()
    assert wide.slots == 2
