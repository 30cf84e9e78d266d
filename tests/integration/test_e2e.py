"""End to end: real hunts of small pytester-built suites, real child processes.

Every flaky behaviour here is deterministic: a counter file under flock makes a
test misbehave on exactly its Nth execution, and a victim fails exactly when its
polluter ran first in the same process. Few runs, ``--workers 0`` unless xdist
itself is under test, ``--no-classify`` (the follow-up runs are not exercised).
"""

from __future__ import annotations

import json
from collections import Counter

from helpers import counter_source, indent, make_suite, run_main

from flakehunt.hunt import profile_weights
from flakehunt.ordering import apply_order
from flakehunt.plan import PlanSettings, sweep

CONTRACT = ("nodeid", "verdict", "runs", "passed", "failed", "errored", "skipped", "category",
            "suspected_fixture", "polluter", "evidence", "reproduce")


def hunt_json(path, capsys, *args: str, runs: int, seed: int = 1, workers: str = "0",
              report=None) -> tuple[int, dict, str]:
    report = report or path.parent / f"report-{seed}-{runs}.json"
    code, out, err = run_main(["run", str(path), "--runs", str(runs), "--seed", str(seed),
                               "--workers", workers, "--no-progress", "--no-classify",
                               "--json", str(report), *args], capsys)
    return code, json.loads(report.read_text()), out + err


def findings_by_name(data: dict) -> dict[str, dict]:
    return {t["nodeid"].split("::")[-1]: t for t in data["tests"]}


# -- the main suite ------------------------------------------------------------------
def main_suite(pytester) -> str:
    counter = pytester.path / "counter.txt"
    return f"""
import pytest

POLLUTED = []


def test_stable():
    assert sum([1, 2]) == 3


def test_always_fails():
    assert False, "always broken"


def test_skipped():
    pytest.skip("not here")


def test_counter():
{indent(counter_source(counter, (2,), 'raise AssertionError("second execution")'))}


def test_victim():
    assert POLLUTED == [], "polluted by test_polluter"


def test_polluter():
    POLLUTED.append("dirt")
"""


def test_hunt_finds_flaky_failing_stable_and_skipped(pytester, monkeypatch, capsys, tmp_path):
    make_suite(pytester, test_main_sample=main_suite(pytester))
    monkeypatch.chdir(pytester.path)
    workdir = tmp_path / "work"
    code, data, text = hunt_json(pytester.path, capsys, "--workdir", str(workdir), runs=6)

    assert code == 1, text
    assert data["schema"] == 1
    assert data["seed"] == 1
    assert data["rootdir"] == str(pytester.path)
    assert len(data["runs"]) == 6
    assert [r["index"] for r in data["runs"]] == list(range(6))
    assert all(r["status"] == "ok" and r["exit_code"] == 1 for r in data["runs"]), data["runs"]

    tests = findings_by_name(data)
    assert set(tests) == {"test_stable", "test_always_fails", "test_skipped", "test_counter",
                          "test_victim", "test_polluter"}
    for t in data["tests"]:
        for field in CONTRACT:
            assert field in t, (t["nodeid"], field)
        assert t["nodeid"].startswith("test_main_sample.py::")
    verdicts = {name: t["verdict"] for name, t in tests.items()}
    assert verdicts == {"test_stable": "stable", "test_always_fails": "failing",
                        "test_skipped": "skipped", "test_counter": "flaky",
                        "test_victim": "flaky", "test_polluter": "stable"}

    counter = tests["test_counter"]
    assert (counter["runs"], counter["passed"], counter["failed"]) == (6, 5, 1)
    assert "AssertionError: second execution" in counter["messages"]
    stable = tests["test_stable"]
    assert (stable["runs"], stable["passed"], stable["failed"], stable["errored"]) == (6, 6, 0, 0)
    assert tests["test_always_fails"]["failed"] == 6
    assert tests["test_skipped"]["skipped"] == 6
    victim = tests["test_victim"]
    assert victim["breakdown"]["order"]["declared"] == {"bad": 0, "runs": 1}
    assert victim["breakdown"]["order"]["reverse"] == {"bad": 1, "runs": 1}
    assert victim["passed"] + victim["failed"] == 6 and victim["errored"] == 0

    # the runs follow the plan for seed 1 (workers 0, the default profiles)
    plan = sweep(PlanSettings(runs=6, seed=1, workers=(0,),
                              profiles=tuple(data["settings"]["profiles"]),
                              weights=profile_weights()))
    assert [(r["order"], r["random_seed"], r["workers"], r["profile"]) for r in data["runs"]] == [
        (s.order, s.random_seed, s.workers, s.profile) for s in plan]

    # --workdir keeps each run's files; the per-run basetemp is cleaned up
    for i in range(6):
        rundir = workdir / f"run-{i:04d}"
        assert (rundir / "junit.xml").is_file()
        assert (rundir / "events-main.jsonl").is_file()
        assert (rundir / "output.log").is_file()
        assert not (rundir / "tmp").exists()
    assert "2 flaky" in text and "test_main_sample.py::test_counter" in text


# -- a crash ---------------------------------------------------------------------------
def test_hunt_records_a_crashed_run(pytester, monkeypatch, capsys):
    counter = pytester.path / "counter.txt"
    make_suite(pytester, test_crash_sample=f"""
def test_before():
    pass


def test_crash():
{indent(counter_source(counter, (2,), "_os._exit(3)"))}


def test_after():
    pass
""")
    monkeypatch.chdir(pytester.path)
    code, data, text = hunt_json(pytester.path, capsys, "--profiles", "none", runs=3)

    assert code == 1, text  # test_crash passed twice and crashed once: flaky
    statuses = Counter(r["status"] for r in data["runs"])
    assert statuses == {"ok": 2, "crashed": 1}, data["runs"]
    [crashed] = [r for r in data["runs"] if r["status"] == "crashed"]
    assert crashed["exit_code"] == 3
    assert crashed["crashed_test"] == "test_crash_sample.py::test_crash"
    # the tests ordered before test_crash in that run passed; the rest never ran
    declared = [f"test_crash_sample.py::{n}" for n in ("test_before", "test_crash", "test_after")]
    order = apply_order(crashed["order"], declared)
    ran = order[:order.index("test_crash_sample.py::test_crash")]
    assert crashed["outcomes"] == ({"passed": len(ran), "crashed": 1} if ran else {"crashed": 1})
    for r in data["runs"]:
        if r["status"] == "ok":
            assert (r["exit_code"], r["outcomes"]) == (0, {"passed": 3}), r

    tests = findings_by_name(data)
    crash = tests["test_crash"]
    assert (crash["verdict"], crash["crashed"], crash["passed"], crash["runs"]) == (
        "flaky", 1, 2, 3)
    assert crash["messages"] == ["the run died while this test was running"]
    for name in ("test_before", "test_after"):
        expected = 3 if f"test_crash_sample.py::{name}" in ran else 2
        assert (tests[name]["verdict"], tests[name]["runs"], tests[name]["passed"]) == (
            "stable", expected, expected), name
    assert any("crashed while running test_crash_sample.py::test_crash" in w
               for w in data["warnings"])


def test_hunt_counts_an_xdist_worker_crash_once(pytester, monkeypatch, capsys):
    make_suite(pytester, test_xcrash_sample="""
import os


def test_ok():
    pass


def test_crash_under_xdist():
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os._exit(3)
""")
    monkeypatch.chdir(pytester.path)
    code, data, text = hunt_json(pytester.path, capsys, "--profiles", "none", runs=1,
                                 workers="2")
    [run] = data["runs"]
    assert run["workers"] == 2
    assert run["crashed_test"] == "test_xcrash_sample.py::test_crash_under_xdist"
    found = findings_by_name(data)
    assert found["test_ok"]["verdict"] == "stable"
    crash = found["test_crash_under_xdist"]
    assert crash["verdict"] == "failing"
    assert (crash["runs"], crash["crashed"]) == (1, 1)


# -- the same seed, the same plan ---------------------------------------------------------
def test_same_seed_gives_the_same_plan_and_random_values(pytester, monkeypatch, capsys):
    values = pytester.path / "values.txt"
    make_suite(pytester, test_seed_sample=f"""
import fcntl, os, random


def test_a():
    with open({str(values)!r}, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write(os.environ["PYTHONHASHSEED"] + " " + repr(random.random()) + "\\n")


def test_b():
    pass
""")
    monkeypatch.chdir(pytester.path)

    def plan_and_values(report_name):
        values.write_text("")
        code, data, text = hunt_json(pytester.path, capsys, "--profiles", "none", runs=3,
                                     seed=77, report=pytester.path / report_name)
        assert code == 0, text
        runs = [(r["index"], r["order"], r["random_seed"], r["workers"], r["profile"])
                for r in data["runs"]]
        return runs, sorted(values.read_text().splitlines())

    first_plan, first_values = plan_and_values("one.json")
    second_plan, second_values = plan_and_values("two.json")
    assert first_plan == second_plan
    assert [p[1] for p in first_plan][:2] == ["declared", "reverse"]
    assert first_values == second_values
    assert len(first_values) == 3 and len(set(v.split()[1] for v in first_values)) == 3
    other = sweep(PlanSettings(runs=3, seed=78, workers=(0,), profiles=("none",)))
    assert [(s.order, s.random_seed) for s in other] != [(p[1], p[2]) for p in first_plan]
