"""Warm starts for real (flakehunt.pool, flakehunt.warm): runs forked by warm parents look
to the tests like fresh processes, each pool member has its own hash seed, a run that
times out is killed with its group, a preload that would make forking unsafe is cut,
and `--start fresh` starts every run fresh."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import make_suite, run_main

from flakehunt.profiles import group_pids

LOOK = """
import fcntl, inspect, json, os, sys, tempfile


def test_look():
    seen = {"pid": os.getpid(), "cwd": os.getcwd(), "tmpdir": tempfile.gettempdir(),
            "hash_env": os.environ.get("PYTHONHASHSEED"), "hash": hash("flakehunt"),
            "argv0": sys.argv[0], "suite_modules": "suite_helper" in sys.modules,
            "inspect_map": len(inspect.modulesbyfile)}
    with open(os.environ["FH_WARM_LOG"], "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write(json.dumps(seen) + "\\n")
"""

QUICK = ("--no-progress", "--no-classify", "--no-history", "--profiles", "none",
         "--workers", "0")


def hunt(capsys, root: Path, tmp_path: Path, *args: str) -> dict:
    report = tmp_path / "report.json"
    code, out, err = run_main(["run", str(root), "--seed", "3", "--json", str(report),
                               *QUICK, *args], capsys)
    assert code in (0, 1), (out, err)
    return json.loads(report.read_text())


def test_warm_runs_look_fresh_and_meet_several_hash_seeds(pytester, capsys, monkeypatch,
                                                          tmp_path):
    log = tmp_path / "seen.jsonl"
    monkeypatch.setenv("FH_WARM_LOG", str(log))
    root = make_suite(pytester, test_look_sample=LOOK)
    data = hunt(capsys, root, tmp_path, "--runs", "4", "--workdir", str(tmp_path / "work"))
    runs = data["runs"]
    kinds = [r["profile_applied"]["start"]["kind"] for r in runs]
    assert kinds == ["warm"] * 4, data["settings"]["start"]
    assert data["settings"]["start"]["warm"] == 4
    # each run's CPU, as its warm parent's wait4 measured it
    cpu = [r["profile_applied"]["start"]["cpu"] for r in runs]
    assert all(0 < c < 60 for c in cpu), cpu
    assert data["settings"]["start"]["runs_cpu"]["sweep"] == pytest.approx(sum(cpu), abs=0.01)
    seen = [json.loads(line) for line in log.read_text().splitlines()]
    assert len({s["pid"] for s in seen}) == 4
    for s in seen:
        assert s["cwd"] == str(root)
        assert Path(s["tmpdir"]).name == "tmpdir"  # the run's own TMPDIR
        assert s["argv0"].endswith(os.path.join("pytest", "__main__.py"))
        assert not s["suite_modules"]
        assert s["inspect_map"] > 100  # primed by its parent (warm.prime)
    # each run had the hash seed it recorded; two parents: two hash seeds
    assert sorted(s["hash_env"] for s in seen) == sorted(str(r["hash_seed"]) for r in runs)
    assert len({r["hash_seed"] for r in runs}) == 2
    one = seen[0]
    fresh = subprocess.run([sys.executable, "-c", "print(hash('flakehunt'))"],
                           env={**os.environ, "PYTHONHASHSEED": one["hash_env"]},
                           capture_output=True, text=True, check=True)
    assert int(fresh.stdout) == one["hash"]


def test_start_fresh_starts_every_run_fresh(pytester, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("FH_WARM_LOG", str(tmp_path / "seen.jsonl"))
    root = make_suite(pytester, test_look_sample=LOOK)
    data = hunt(capsys, root, tmp_path, "--runs", "2", "--start", "fresh")
    assert [r["profile_applied"]["start"] for r in data["runs"]] == [
        {"kind": "fresh", "why": "--start fresh"}] * 2
    assert all(r["hash_seed"] is None for r in data["runs"])
    seen = [json.loads(line) for line in (tmp_path / "seen.jsonl").read_text().splitlines()]
    assert [s["inspect_map"] for s in seen] == [0, 0]  # nothing primes a fresh run


PRIMED = """
import inspect, json, sys, tokenize
import pytest, _pytest.junitxml
from flakehunt import warm
if sys.argv[1] == "prime":
    warm.prime()
before = {"map": len(inspect.modulesbyfile), "tokenize": tokenize._compile.cache_info().currsize}
codes = [f.__code__ for f in (json.dumps, inspect.getsource, pytest.main, warm.prime,
                              _pytest.junitxml.bin_xml_escape)]
print(json.dumps({**before, "modules": [inspect.getmodule(c).__name__ for c in codes]}))
"""


def test_a_primed_parent_answers_as_an_unprimed_run_would():
    """warm.prime fills inspect's module map and tokenize's regex before any run, and
    a traceback's module lookups then give what they give in a process that filled
    them itself (code objects have no __module__: inspect finds them by file)."""
    got = {how: json.loads(subprocess.run([sys.executable, "-c", PRIMED, how],
                                          capture_output=True, text=True, check=True).stdout)
           for how in ("prime", "plain")}
    assert got["plain"]["map"] == 0 and got["plain"]["tokenize"] == 0
    assert got["prime"]["map"] > 100 and got["prime"]["tokenize"] == 1
    assert got["prime"]["modules"] == got["plain"]["modules"] == [
        "json", "inspect", "_pytest.config", "flakehunt.warm", "_pytest.junitxml"]


def test_a_warm_run_that_hangs_is_killed_with_its_group(pytester, capsys, tmp_path):
    root = make_suite(pytester, test_hang_sample="""
        import subprocess, sys, time


        def test_hang():
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60.123)"])
            time.sleep(60)
        """)
    started = time.monotonic()
    # the timeout also bounds collection, which a busy machine can slow to seconds
    data = hunt(capsys, root, tmp_path, "--runs", "1", "--run-timeout", "10")
    [run] = data["runs"]
    assert (run["status"], run["profile_applied"]["start"]["kind"]) == ("timeout", "warm"), run
    # killed at its limit, not left to sleep its 60 s (the bound leaves room for a
    # loaded machine's collection and start-up)
    elapsed = time.monotonic() - started
    assert elapsed < 55, elapsed
    leftovers = subprocess.run(["pgrep", "-f", "time.sleep\\(60.123\\)"], capture_output=True,
                               text=True).stdout.split()
    assert not leftovers, leftovers


@pytest.mark.parametrize("source, why", [
    ("import threading, time\n"
     "threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n",
     "2 threads running"),
    ("import warnings\nwarnings.warn('old', DeprecationWarning)\n",
     "it warns (DeprecationWarning)"),
])
def test_a_preload_that_starts_a_thread_or_warns_is_cut_there(tmp_path, source, why):
    from flakehunt.pool import Pool, WarmChild

    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "calm.py").write_text("VALUE = 1\n")
    (lib / "threader.py").write_text(source)
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_ok.py").write_text("def test_ok():\n    pass\n")
    env = {**os.environ, "PYTHONPATH": str(lib)}
    modules = [["calm", str(lib / "calm.py")], ["threader", str(lib / "threader.py")]]
    pool = Pool(sys.executable, suite, env, tmp_path / "warm", seed=1, preload=modules,
                size=1)
    try:
        deadline = time.monotonic() + 60
        while not pool.notes and time.monotonic() < deadline:
            pool.pump()
            time.sleep(0.05)
        assert pool.notes == [f"preloading stopped at importing threader: {why}"]
        assert pool.preload == modules[:1]
        parent, why = pool.pick(None)
        assert parent is not None, why
        child = WarmChild(pool, parent, {"args": ["-q", "-p", "no:cacheprovider"],
                                         "cwd": str(suite), "env": env,
                                         "log": str(tmp_path / "run.log")},
                          [sys.executable, "-m", "pytest"])
        while (rc := child.poll()) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rc == 0, (tmp_path / "run.log").read_text()
        assert child.start["kind"] == "warm"
    finally:
        pool.close()


LAZY = """
import importlib.util, sys

spec = importlib.util.find_spec("threader")
spec.loader = importlib.util.LazyLoader(spec.loader)
module = importlib.util.module_from_spec(spec)
sys.modules["threader"] = module
spec.loader.exec_module(module)  # runs threader only when an attribute is read
"""


def test_a_parent_that_priming_made_unsafe_refuses_and_warm_starts_stop(tmp_path):
    """Priming inspect's map reads every module, so a lazily imported one loads in
    the parent: if that starts a thread, the parent refuses and the hunt's runs start
    fresh, as when pytest's own start-up made forking unsafe."""
    from flakehunt.pool import Pool

    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "threader.py").write_text(
        "import threading, time\n"
        "threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n")
    (lib / "lazy_holder.py").write_text(LAZY)
    suite = tmp_path / "suite"
    suite.mkdir()
    env = {**os.environ, "PYTHONPATH": str(lib)}
    pool = Pool(sys.executable, suite, env, tmp_path / "warm", seed=1,
                preload=[["lazy_holder", str(lib / "lazy_holder.py")]], size=1)
    try:
        deadline = time.monotonic() + 60
        while not pool.disabled and time.monotonic() < deadline:
            pool.pump()
            time.sleep(0.05)
        assert pool.disabled == "after priming caches: 2 threads running"
        assert pool.pick(None)[0] is None
    finally:
        pool.close()


WORKER_LOOK = """
import fcntl, json, os, sys

import pytest


@pytest.mark.parametrize("n", range(6))
def test_look(n):
    main = sys.modules["__main__"]
    seen = {"pid": os.getpid(), "pgid": os.getpgid(0), "sid": os.getsid(0),
            "worker": os.environ.get("PYTEST_XDIST_WORKER"), "argv": sys.argv,
            "main_file": getattr(main, "__file__", None), "hash": hash("flakehunt"),
            "hash_env": os.environ.get("PYTHONHASHSEED"), "cwd": os.getcwd()}
    with open(os.environ["FH_WARM_LOG"], "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write(json.dumps(seen) + "\\n")
"""


def test_xdist_workers_of_a_warm_run_are_forked_warm_and_look_fresh(
        pytester, capsys, monkeypatch, tmp_path):
    log = tmp_path / "seen.jsonl"
    monkeypatch.setenv("FH_WARM_LOG", str(log))
    root = make_suite(pytester, test_look_sample=WORKER_LOOK)
    data = hunt(capsys, root, tmp_path, "--runs", "1", "--workers", "2")
    [run] = data["runs"]
    assert run["profile_applied"]["start"]["workers"] == {"warm": 2, "fresh": 0}
    assert data["settings"]["start"]["xdist_workers"]["warm"] == 2
    seen = [json.loads(line) for line in log.read_text().splitlines()]
    assert {s["worker"] for s in seen} == {"gw0", "gw1"}
    assert len({s["pid"] for s in seen}) == 2
    # in the run's session and process group (its time limit and profiles reach them)
    assert len({(s["pgid"], s["sid"]) for s in seen}) == 1
    for s in seen:
        assert s["argv"] == ["-c"] and s["main_file"] is None  # as `python -c` has them
        assert s["cwd"] == str(root)
        assert s["hash_env"] == str(run["hash_seed"])
    fresh = subprocess.run([sys.executable, "-c", "print(hash('flakehunt'))"],
                           env={**os.environ, "PYTHONHASHSEED": seen[0]["hash_env"]},
                           capture_output=True, text=True, check=True)
    assert int(fresh.stdout) == seen[0]["hash"]


def test_a_warm_xdist_run_that_hangs_is_killed_with_its_workers(pytester, capsys,
                                                                tmp_path, monkeypatch):
    marks = tmp_path / "pgids"
    monkeypatch.setenv("FH_PGIDS", str(marks))
    root = make_suite(pytester, test_hang_sample="""
        import os, time


        def test_hang():
            with open(os.environ["FH_PGIDS"], "a") as fh:
                fh.write(f"{os.getpgid(0)}\\n")
            time.sleep(60)
        """)
    data = hunt(capsys, root, tmp_path, "--runs", "1", "--workers", "2",
                "--run-timeout", "15")
    [run] = data["runs"]
    assert run["status"] == "timeout"
    [pgid] = {int(line) for line in marks.read_text().split()}
    # the zygote and every worker are gone (zombies at most, where no init reaps them)
    deadline = time.monotonic() + 10
    while (alive := [p for p in group_pids(pgid) if not dead(p)]) and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive


def dead(pid: int) -> bool:
    try:
        stat = Path("/proc", str(pid), "stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2:].split()[0] in ("Z", "X")


def test_a_worker_client_without_its_zygote_starts_fresh(tmp_path):
    from flakehunt import zygote

    record = tmp_path / "workers.txt"
    out = subprocess.run([sys.executable, "-I", "-S", zygote.__file__,
                          str(tmp_path / "no-such-socket"), str(record),
                          "-c", "import sys; print('fresh', sys.flags.isolated)"],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["fresh", "0"], out.stderr
    [line] = record.read_text().splitlines()
    assert line.startswith("fresh ")
