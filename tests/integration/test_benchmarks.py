"""The benchmark's own logic: the generated suite and how contenders are scored."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_peers  # noqa: E402
import gen_suite  # noqa: E402


def test_generated_suite_collects_every_seeded_test(tmp_path):
    manifest = gen_suite.generate(tmp_path, seed=3)
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                           "-p", "no:cacheprovider", "-p", "no:randomly"],
                          cwd=tmp_path, capture_output=True, text=True)
    ids = [line for line in proc.stdout.splitlines() if "::" in line]
    assert len(ids) >= 300
    assert set(manifest) <= set(ids)
    assert {m["category"] for m in manifest.values()} == {"loop-closed", "state-leak", "race"}
    for want in manifest.values():
        assert want["fixture"]
        assert (want["polluter"] is None) == (want["category"] == "race")
        assert all(p in ids for p in want["polluter"] or ())


def test_generated_suite_is_the_same_for_a_seed(tmp_path):
    gen_suite.generate(tmp_path / "a", seed=5)
    gen_suite.generate(tmp_path / "b", seed=5)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.py"))
    assert files and all((tmp_path / "a" / f).read_text() == (tmp_path / "b" / f).read_text()
                         for f in files)


def suite(manifest: dict) -> bench_peers.Suite:
    return bench_peers.Suite("s", Path("."), manifest)


def run(index, purpose, ended, duration, results, **extra):
    return {"index": index, "purpose": purpose, "ended": ended, "duration": duration,
            "results": [{"nodeid": n, "outcome": o, "position": p} for n, o, p in results],
            **extra}


V, P = "t.py::victim", "t.py::polluter"
MANIFEST = {V: {"category": "state-leak", "fixture": "reg", "polluter": [P]}}


def test_find_all_is_when_the_last_seeded_test_was_seen_both_ways():
    runs = [run(0, "sweep", 3.0, 1.0, [(V, "passed", 1)]),
            run(1, "sweep", 5.0, 1.0, [(P, "passed", 1), (V, "failed", 2)]),
            run(2, "sweep", 4.0, 1.0, [(V, "passed", 1)])]
    assert bench_peers.find_all_from_runs(runs, suite(MANIFEST)) == 5.0
    assert bench_peers.find_all_from_runs(runs[:1], suite(MANIFEST)) is None


def test_order_search_counts_bisect_runs_against_the_bound():
    sweep = run(0, "sweep", 1.0, 1.0, [(f"t.py::s{i}", "passed", i + 1) for i in range(9)]
                + [(V, "failed", 10)], workers=0)
    steps = [run(i, "bisect", 2.0 + i, 0.2, [], tests=["t.py::s1", V]) for i in range(1, 4)]
    out = bench_peers.order_search([sweep, *steps], suite(MANIFEST))
    assert out[V] == {"candidates": 9, "runs": 3, "bound": math.ceil(math.log2(9)) + 3,
                      "met": True}
    many = [run(i, "bisect", 2.0, 0.2, [], tests=[V]) for i in range(1, 9)]
    assert not bench_peers.order_search([sweep, *many], suite(MANIFEST))[V]["met"]


@pytest.mark.parametrize("profile, workers, applied, cpus", [
    ("none", 0, None, 1), ("none", 2, None, 2), ("single-core", 2, None, 1),
    ("contended", 0, None, 2), ("quota-25", 0, None, 0.25),
    # throttled only after 1 s of a 3 s run: a whole CPU, then a quarter
    ("quota-25", 0, 1.0, (1 * 1.0 + 0.25 * 2.0) / 3.0)])
def test_run_cpus_as_the_scheduler_counts_them(profile, workers, applied, cpus):
    x = {"profile": profile, "workers": workers, "duration": 3.0,
         "profile_applied": {"parent": {"applied_after_s": applied}} if applied else {}}
    assert math.isclose(bench_peers.run_cpus(x, 2), cpus)


def test_overhead_against_a_perfect_packing(monkeypatch):
    monkeypatch.setattr(bench_peers.os, "cpu_count", lambda: 2)
    runs = [run(0, "sweep", 2.0, 2.0, [], profile="none", workers=0),
            run(1, "sweep", 2.0, 2.0, [], profile="none", workers=0),
            run(2, "sweep", 5.0, 2.0, [], profile="none", workers=0)]
    o = bench_peers.overhead(runs, wall=6.0)
    assert o["ideal"] == 3.0 and math.isclose(o["overhead"], 1.0)
    assert math.isclose(o["no_run_in_flight"], 2.0)  # 2-3 s and 5-6 s


def test_processes_are_compared_per_seeded_test_found():
    def result(name, found, sessions, interpreters):
        return bench_peers.Result(name, "s", found=found, sessions=sessions,
                                  interpreters=interpreters)

    fh = result("flakehunt", ["a", "b", "c", "d"], 40, 12)
    peer = result("flakedoctor", ["a"], 39, 39)
    none = result("flake-exorcist", [], 30, 31)
    targets = bench_peers.targets([fh, peer, none], {"s": suite(MANIFEST)})
    by = {t["target"]: t for t in targets}
    goal = "s: fewer pytest sessions and interpreters than {} per finding"
    assert by[goal.format("flakedoctor")]["met"] is True
    assert by[goal.format("flake-exorcist")]["met"] is True
    assert goal.format("whyflaky") not in by  # not run: no target
    fewer = result("flakedoctor", ["a", "b", "c", "d"], 50, 11)  # fewer interpreters only
    by = {t["target"]: t for t in bench_peers.targets([fh, fewer], {"s": suite(MANIFEST)})}
    assert by[goal.format("flakedoctor")]["met"] is False


def test_process_log_counts_interpreters_and_sessions(tmp_path):
    log = tmp_path / "procs.log"
    log.write_text("1 python\n2 pytest\n2 pytest\n2 session\n3 helper\n4 session\n"
                   "4 session\n5 xdist-worker\n")
    assert bench_peers.count_kinds(log) == {
        "pytest": 1, "xdist-worker": 1, "helper": 1, "python": 1, "interpreters": 4,
        "sessions": 3}
    assert bench_peers.count_procs(log) == (1, 1)
    import bench_equal_power as bep

    # a warm parent is an interpreter that imported pytest; the tool's own CLI is not
    assert bep.interpreters(log) == 3


def test_equal_power_table_compares_in_the_same_rounds(tmp_path):
    import bench_equal_power as bep

    truth = bep.suite_truth("websocket", tmp_path / "ws", seed=1)
    assert len(truth.flaky) == 4 and (tmp_path / "ws" / "tests").is_dir()
    assert bep.suite_truth("leak_environ", tmp_path / "le", seed=1).flaky

    def row(wall: float, cpu: float, found: int = 4) -> dict:
        return {"wall": wall, "cpu": cpu, "found": found, "expected": 4, "classified": 4,
                "sessions": 50, "interpreters": 50}

    results = {"naive-loop": [row(100, 40), row(120, 40)],
               "flakehunt": [row(30, 30), row(36, 34)],
               "flakehunt-fresh": [row(66, 60), row(66, 60)]}
    lines = bep.table("websocket", 27, truth, results)
    assert lines[2].split()[:3] == ["naive-loop", "110.0", "1.00"]
    assert lines[3].split()[:3] == ["flakehunt", "33.0", "0.30"]
    assert "warm vs fresh flakehunt: wall 0.50x, cpu 0.53x" in lines[-3]
    assert lines[-2].startswith("  target: flakehunt wall <= 0.35x naive at equal recall: MET")
    assert lines[-1].startswith("  floor: flakehunt's 32.0 CPU-s over ")
    results["flakehunt"][0]["found"] = 3
    assert "MISSED" in bep.table("websocket", 27, truth, results)[-2]
    # 32 CPU-s over 2 CPUs: 16 s at least, 0.15x of 110 s; 0.35x allows 0.35 * 110 * 2
    assert bep.floor(32.0, 110.0, cpus=2) == (
        "  floor: flakehunt's 32.0 CPU-s over 2 CPUs take at least 16.0 s, 0.15x the naive "
        "loop's wall; 0.35x needs a hunt of at most 77.0 CPU-s here")


def test_replay_sweep_runs_a_hunts_runs_through_the_scheduler_again():
    import replay_sweep

    def run(index: int, duration: float, workers: int = 0, profile: str = "none") -> dict:
        return {"index": index, "purpose": "sweep", "duration": duration, "workers": workers,
                "profile": profile, "random_seed": index}

    report = {"runs": [run(0, 2.0), run(1, 2.0), run(2, 1.0, workers=2),
                       {**run(3, 5.0), "purpose": "isolate"}]}
    wall, starts = replay_sweep.replay(report, cpus=2, tick=0.05)
    assert set(starts) == {0, 1, 2}  # the sweep's runs only
    assert starts[2] == 0.0  # the wide one first, on the whole machine
    assert starts[0] == starts[1] >= 1.0  # then both narrow ones at once
    assert 3.0 <= wall <= 3.2
    # one CPU: everything one after another
    assert 5.0 <= replay_sweep.replay(report, cpus=1, tick=0.05)[0] <= 5.3


def test_bench_evidence_forks_each_kind_of_run_from_one_warm_parent(tmp_path):
    import bench_evidence

    suite = tmp_path / "suite"
    (suite / "tests").mkdir(parents=True)
    (suite / "tests" / "test_a.py").write_text(
        "STATE = []\n\n\ndef test_grows():\n    STATE.append(1)\n\n\n"
        "def test_fails():\n    assert False\n")
    (suite / "pytest.ini").write_text("[pytest]\naddopts = -n 2\n")  # the bench: one process
    got = bench_evidence.measure(suite, sys.executable, 2, ["tests"], tmp_path / "out")
    runs = got["runs"]
    assert [r["kind"] for r in runs] == ["plain", "off", "on", "off", "on", "plain"]  # in turn
    assert {r["code"] for r in runs} == {1}  # each ran the suite: one test fails
    assert all(r["cpu"] > 0 for r in runs)
    assert all(r["snapshot"] == 0 for r in runs if r["kind"] != "on")
    assert all(r["snapshot"] > 0 for r in runs if r["kind"] == "on")
    lines = bench_evidence.report(suite, got)
    assert lines[2].split()[:2] == ["plain", "pytest"] and "x" in lines[4]
    assert lines[-1].lstrip().startswith("state snapshot")


def test_bench_evidence_passes_what_follows_two_dashes_to_pytest(tmp_path, monkeypatch,
                                                                    capsys):
    import bench_evidence

    seen = {}

    def measure(suite, python, forks, args, out):
        seen.update(suite=suite, forks=forks, args=args)
        return {"preload": {"preloaded": 3, "why": ""}, "snapshot": 0.01,
                "cpu": {"plain": 0.2, "off": 0.21, "on": 0.25}, "runs": []}

    monkeypatch.setattr(bench_evidence, "measure", measure)
    monkeypatch.setattr(sys, "argv", ["bench_evidence.py", str(tmp_path), "--forks", "2",
                                      "--", "tests", "-k", "not slow"])
    assert bench_evidence.main() == 0
    assert seen == {"suite": tmp_path.resolve(), "forks": 2, "args": ["tests", "-k", "not slow"]}
    out = capsys.readouterr().out
    assert "evidence on       0.250  x1.25 plain, x1.19 off" in out
    assert "25% of what the evidence adds" in out
