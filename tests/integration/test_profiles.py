"""Perturbation profiles: selection and fallback with fakes, a few real processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import SUITE_INI

from flakehunt import profiles
from flakehunt.cli import main
from flakehunt.hunt import profile_weights, usable_profiles
from flakehunt.perturb import TimerJitter
from flakehunt.plan import PlanSettings, sweep


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in state


def test_every_default_profile_is_planned_in_fifty_runs():
    specs = sweep(PlanSettings(runs=50, seed=1, profiles=profiles.DEFAULT,
                               weights=profile_weights()))
    assert {s.profile for s in specs} == set(profiles.DEFAULT)
    assert {s.workers for s in specs} == {0, 2}


@pytest.mark.parametrize("v2, v1, stop, expected", [
    (Path("/x"), None, True, "cgroup-v2"),
    (None, Path("/x"), True, "cgroup-v1"),
    (None, None, True, "duty-cycle"),
    (None, None, False, None),
])
def test_quota_mechanism_preference(monkeypatch, v2, v1, stop, expected):
    monkeypatch.setattr(profiles, "cgroup_v2_dir", lambda: v2)
    monkeypatch.setattr(profiles, "cgroup_v1_dir", lambda: v1)
    if not stop:
        monkeypatch.delattr(profiles.signal, "SIGSTOP")
    assert profiles.quota_mechanism() == expected
    avail = profiles.get("quota-25").availability()
    assert avail.available is (expected is not None)


def test_unavailable_quota_degrades_with_a_warning(monkeypatch):
    monkeypatch.setattr(profiles, "quota_mechanism", lambda: None)
    warnings: list[str] = []
    assert usable_profiles(("none", "quota-25"), warnings) == ("none",)
    assert "quota-25 unavailable" in warnings[0]


def test_cpu_share_of_each_profile():
    assert profiles.get("none").cpus_used(2) == 2
    assert profiles.get("single-core").cpus_used(2) == 1
    assert profiles.get("quota-25").cpus_used(2) == 0.5
    assert profiles.get("contended").cpus_used(0) == len(profiles.allowed_cpus())


def test_quota_falls_back_to_a_duty_cycle_when_the_cgroup_cannot_be_made(monkeypatch, tmp_path):
    def broken(*args):
        raise OSError("read-only")

    monkeypatch.setattr(profiles, "quota_mechanism", lambda: "cgroup-v1")
    monkeypatch.setattr(profiles, "CgroupQuota", broken)
    sleeper = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        attached = profiles.get("quota-25").attach(sleeper.pid, 0, tmp_path)
        assert isinstance(attached, profiles.DutyCycle)
        time.sleep(0.3)
        facts = attached.stop()
        assert facts["mechanism"] == "duty-cycle"
        assert facts["fallback_from"] == "cgroup-v1"
        assert facts["cycles"] > 0 and facts["bit"]
        # never left stopped
        state = Path(f"/proc/{sleeper.pid}/status").read_text()
        assert "State:\tT" not in state
    finally:
        os.killpg(sleeper.pid, signal.SIGKILL)
        sleeper.wait()


def test_throttle_command_mode_runs_and_reports(tmp_path):
    report = tmp_path / "t.json"
    proc = subprocess.run([sys.executable, "-m", "flakehunt.throttle", "--share=0.5",
                           f"--report={report}", "--", sys.executable, "-c",
                           "import sys; sum(range(2_000_000)); sys.exit(7)"], timeout=60)
    assert proc.returncode == 7
    facts = json.loads(report.read_text())
    assert facts["mechanism"] == "duty-cycle" and facts["requested"] == 0.5


def test_timer_jitter_is_seeded_and_replayable():
    jitter = TimerJitter(0.01)
    jitter.install()
    try:
        def delays(seed: str) -> list[float]:
            loop = asyncio.new_event_loop()
            try:
                jitter.reseed(seed)
                now = loop.time()
                handles = [loop.call_at(now, lambda: None) for _ in range(5)]
                return [round(h.when() - now, 9) for h in handles]
            finally:
                loop.close()

        first, again, other = delays("s1"), delays("s1"), delays("s2")
        assert first == again
        assert first != other
        assert all(0 <= d <= 0.01 for d in first)
    finally:
        jitter.uninstall()
    assert asyncio.BaseEventLoop.call_at is jitter.original or jitter.original is None


SUITE = """
import asyncio, os, sys, threading, time

import pytest

def test_cpu():
    # 150 ms of CPU (30 quota periods' worth at 25%), however long a loaded machine
    # takes to give it: throttled at least once even when other processes leave this
    # run less than its quota most of the time
    start = time.process_time()
    while time.process_time() - start < 0.15:
        pass

def test_async():
    async def go():
        await asyncio.sleep(0.001)
    asyncio.run(go())

def test_thread():
    t = threading.Thread(target=lambda: None); t.start(); t.join()

def test_switch_interval_seen():
    assert sys.getswitchinterval() > 0
"""


def test_real_hunt_applies_each_profile_and_leaves_nothing_behind(tmp_path, monkeypatch):
    (tmp_path / "pytest.ini").write_text(SUITE_INI)
    (tmp_path / "test_p.py").write_text(SUITE)
    out = tmp_path / "r.json"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["run", "--runs", "4", "--seed", "1", "--workers", "0", "--no-progress",
              "--profiles", "contended,quota-25,jitter,threads", "--json", str(out)])
    assert exc.value.code == 0
    runs = json.loads(out.read_text())["runs"]
    applied = {r["profile"]: r["profile_applied"] for r in runs}
    assert applied["contended"]["main"]["burners"] == len(profiles.allowed_cpus())
    assert applied["jitter"]["main"]["jitter_ms"] == profiles.JITTER_MS
    assert applied["threads"]["main"]["switch_interval"] < 0.001
    assert applied["quota-25"]["parent"]["mechanism"] in ("cgroup-v1", "cgroup-v2",
                                                          "duty-cycle")
    assert applied["quota-25"]["parent"]["bit"]
    for pid in applied["contended"]["main"]["burner_pids"]:
        assert not alive(pid), f"burner {pid} outlived its run"
    for base in (profiles.cgroup_v1_dir(), profiles.cgroup_v2_dir()):
        if base is not None:
            assert not list(base.glob(f"flakehunt-{os.getpid()}-*"))


HANGING = """
import os, pathlib, time

def test_hang():
    pathlib.Path(os.environ["FH_MARK"]).joinpath(str(os.getpid())).touch()
    time.sleep(60)
"""


@pytest.mark.parametrize("profile", ["quota-25", "contended"])
def test_interrupted_hunt_leaves_no_stopped_process_burner_or_cgroup(tmp_path, profile):
    (tmp_path / "pytest.ini").write_text(SUITE_INI)
    (tmp_path / "test_h.py").write_text(HANGING)
    marks = tmp_path / "marks"
    marks.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["FH_MARK"] = str(marks)
    hunter = subprocess.Popen([sys.executable, "-m", "flakehunt", "run", "--runs", "2",
                               "--workers", "0", "--no-progress", "--profiles", profile,
                               "--json", str(tmp_path / "r.json")],
                              cwd=tmp_path, env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not list(marks.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        test_pids = [int(p.name) for p in marks.iterdir()]
        assert test_pids, "the suite never started"
        hunter.send_signal(signal.SIGTERM)
        assert hunter.wait(timeout=30) == 143
        time.sleep(0.2)
        for pid in test_pids:
            assert not alive(pid), f"test process {pid} outlived the hunt"
        for base in (profiles.cgroup_v1_dir(), profiles.cgroup_v2_dir()):
            if base is not None:
                assert not list(base.glob(f"flakehunt-{hunter.pid}-*"))
        report = json.loads((tmp_path / "r.json").read_text())
        assert report["interrupted"] == 143
        burners = [pid for r in report["runs"]
                   for pid in r["profile_applied"].get("main", {}).get("burner_pids", [])]
        assert (profile == "contended") == bool(burners)
        for pid in burners:
            assert not alive(pid), f"burner {pid} outlived the hunt"
    finally:
        if hunter.poll() is None:
            os.killpg(hunter.pid, signal.SIGKILL)
            hunter.wait()


def test_cgroups_made_and_not_handed_over_are_removed_at_the_end(tmp_path):
    made = tmp_path / "flakehunt-1-2"
    made.mkdir()
    profiles.MADE.add(made)
    profiles.remove_made()
    assert not made.exists() and made not in profiles.MADE
