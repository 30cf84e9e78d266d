"""A second suite, built with pytester and unlike the shipped example, whose
flakiness is deterministic (declared order, counter files, a worker handshake),
hunted for real: every category must come out right, with its fixture."""

from __future__ import annotations

import json
import os
import sys

import pytest
from helpers import run_main

from flakehunt.cli import main

INI = """
[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
"""

APP_STATE = """
import asyncio

REGISTRY = []
CONFIG = {}


class Scheduler:
    def __init__(self):
        self._loop = None

    async def start(self):
        if self._loop is None:
            self._loop = asyncio.get_running_loop()

    def later(self, callback):
        self._loop.call_soon(callback)


SCHEDULER = Scheduler()
"""

CONFTEST = """
import fcntl
import os
import pathlib
import threading
import time

import pytest

import app_state

WORK = pathlib.Path(os.environ["FH_WORK"])


def bump(name):
    path = WORK / f"{name}.count"
    with open(WORK / "lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        n = int(path.read_text()) + 1 if path.exists() else 1
        path.write_text(str(n))
    return n


@pytest.fixture
def registry():
    return app_state.REGISTRY


@pytest.fixture
def config():
    return app_state.CONFIG


@pytest.fixture
def scheduler():
    return app_state.SCHEDULER


@pytest.fixture
def background_counter():
    box = {"value": 0}
    slow = bump("thread") % 3 == 2  # every third execution the worker thread is late

    def work():
        time.sleep(0.4 if slow else 0.0)
        box["value"] = 1

    thread = threading.Thread(target=work, name="counter-worker")
    thread.start()
    yield box
    thread.join()


@pytest.fixture
def shared_file():
    return WORK / "report.txt"  # one fixed path for every process


def rendezvous(kind, timeout):
    # the processes of one run meet here: xdist workers share PYTEST_XDIST_TESTRUNUID
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", f"serial-{os.getpid()}")
    folder = WORK / f"{kind}-{run}"
    folder.mkdir(exist_ok=True)
    (folder / str(os.getpid())).touch()
    end = time.monotonic() + timeout
    while time.monotonic() < end and len(list(folder.iterdir())) < 2:
        time.sleep(0.01)
"""

TESTS = {
    "test_a_registry.py": """
def test_register_plugin(registry):
    registry.append("plugin")
    assert "plugin" in registry


def test_registry_starts_empty(registry):
    assert registry == []
""",
    "test_b_config.py": """
def test_configure(config):
    config["ready"] = True


def test_needs_config(config):
    assert config.get("ready")
""",
    "test_c_loop.py": """
import pytest


@pytest.mark.asyncio
async def test_start(scheduler):
    await scheduler.start()


@pytest.mark.asyncio
async def test_later(scheduler):
    await scheduler.start()
    scheduler.later(lambda: None)
""",
    "test_d_thread.py": """
import time


def test_worker_done(background_counter):
    time.sleep(0.1)
    assert background_counter["value"] == 1
""",
    "test_e_shared.py": """
import os
import time

from conftest import rendezvous


def test_write_report(shared_file):
    rendezvous("started", 0.3)
    shared_file.write_text(str(os.getpid()))
    time.sleep(0.2)
    assert shared_file.read_text() == str(os.getpid())
""",
    "test_g_teardown.py": """
import pytest


@pytest.fixture(scope="module")
def db():
    yield {}
    raise ValueError("db teardown failed")


def test_db_first(db):
    assert db == {}


def test_db_second(db):
    assert db == {}
""",
    "test_f_plain.py": """
import pytest


def test_always_fails():
    assert 1 == 2


async def test_forgot_marker():
    assert True


@pytest.mark.parametrize("n", [1, 2, 3])
def test_stable(n):
    assert n > 0
""",
}


@pytest.fixture(scope="module")
def hunted(tmp_path_factory):
    suite = tmp_path_factory.mktemp("mixed")
    (suite / "pytest.ini").write_text(INI)
    (suite / "app_state.py").write_text(APP_STATE)
    (suite / "conftest.py").write_text(CONFTEST)
    for name, text in TESTS.items():
        (suite / name).write_text(text)
    work = tmp_path_factory.mktemp("work")
    out = tmp_path_factory.mktemp("out") / "r.json"
    old_cwd, old_env = os.getcwd(), os.environ.get("FH_WORK")
    os.chdir(suite)
    os.environ["FH_WORK"] = str(work)
    try:
        with pytest.raises(SystemExit) as exc:
            # --jobs 1: no two runs at once, so only xdist workers ever share the file
            main(["run", "--runs", "10", "--seed", "5", "--workers", "0,2", "--dist", "each",
                  "--jobs", "1", "--no-progress", "--json", str(out)])
    finally:
        os.chdir(old_cwd)
        if old_env is None:
            os.environ.pop("FH_WORK", None)
        else:
            os.environ["FH_WORK"] = old_env
    report = json.loads(out.read_text())
    return exc.value.code, {t["nodeid"]: t for t in report["tests"]}, report


def test_exit_code_says_flaky(hunted):
    code, _, _ = hunted
    assert code == 1


@pytest.mark.parametrize("nodeid, category, fixture, polluter", [
    ("test_a_registry.py::test_registry_starts_empty", "state-leak", "registry",
     ["test_a_registry.py::test_register_plugin"]),
    ("test_b_config.py::test_needs_config", "state-leak", "config",
     ["test_b_config.py::test_configure"]),
    ("test_c_loop.py::test_later", "loop-closed", "scheduler",
     ["test_c_loop.py::test_start"]),
    ("test_d_thread.py::test_worker_done", "race", "background_counter", None),
    ("test_e_shared.py::test_write_report", "race", "shared_file", None),
])
def test_flaky_test_classified(hunted, nodeid, category, fixture, polluter):
    _, tests, _ = hunted
    t = tests[nodeid]
    assert t["verdict"] == "flaky", t
    assert t["category"] == category, t["evidence"]
    assert t["suspected_fixture"] == fixture, t["evidence"]
    assert t["polluter"] == polluter
    assert t["reproduce"] and "not verified" not in t["reproduce"], t["confidence"]


@pytest.mark.parametrize("nodeid", ["test_g_teardown.py::test_db_first",
                                    "test_g_teardown.py::test_db_second"])
def test_wide_fixture_teardown_blamed_on_the_fixture(hunted, nodeid):
    _, tests, _ = hunted
    t = tests[nodeid]
    assert t["verdict"] == "flaky"
    assert t["suspected_fixture"] == "db"
    assert t["problem"] == "fixture-teardown"


def test_state_leak_names_the_leaked_object(hunted):
    _, tests, _ = hunted
    evidence = "\n".join(tests["test_a_registry.py::test_registry_starts_empty"]["evidence"])
    assert "app_state.REGISTRY: 0 entries -> 1 entry" in evidence


def test_loop_closed_names_the_holder(hunted):
    _, tests, _ = hunted
    evidence = "\n".join(tests["test_c_loop.py::test_later"]["evidence"])
    assert "Scheduler._loop holds" in evidence
    assert "closed" in evidence


def test_failing_and_misconfigured_are_not_flaky(hunted):
    _, tests, _ = hunted
    assert tests["test_f_plain.py::test_always_fails"]["verdict"] == "failing"
    assert tests["test_f_plain.py::test_always_fails"]["problem"] is None
    forgot = tests["test_f_plain.py::test_forgot_marker"]
    assert forgot["verdict"] == "failing"
    assert forgot["problem"] == "misconfiguration"
    assert forgot["category"] is None


def test_stable_tests_have_no_finding(hunted):
    _, tests, _ = hunted
    for n in (1, 2, 3):
        t = tests[f"test_f_plain.py::test_stable[{n}]"]
        assert t["verdict"] == "stable" and t["category"] is None
    assert tests["test_a_registry.py::test_register_plugin"]["verdict"] == "stable"


def test_printed_reproducers_replay_the_failure(hunted, tmp_path):
    """Each printed command, run as printed, fails (the verification, checked again)."""
    import shlex
    import subprocess

    _, tests, report = hunted
    t = tests["test_a_registry.py::test_registry_starts_empty"]
    cmd = t["reproduce"]
    cwd = report["rootdir"]
    if cmd.startswith("cd "):
        cd, _, cmd = cmd.partition(" && ")
        cwd = shlex.split(cd)[1]
    env_part, *argv = shlex.split(cmd)
    assert env_part.startswith("PYTHONHASHSEED=")
    assert argv[:3] == ["python", "-m", "pytest"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONHASHSEED"] = env_part.split("=", 1)[1]
    env["FH_WORK"] = str(tmp_path)
    proc = subprocess.run([sys.executable, *argv[1:], "-q"], cwd=cwd, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 1, proc.stdout
    assert "1 failed, 1 passed" in proc.stdout


ALWAYS = {
    "shared.py": "STATE = {}\n",
    # declared first: in the one sweep run (declared order) it pollutes the victim
    "test_a_polluter.py": """
import shared


def test_polluter():
    shared.STATE["dirty"] = True
""",
    "test_b_victim.py": """
import shared


def test_victim():
    assert not shared.STATE, "left dirty by an earlier test"


def test_broken():
    assert 1 == 2
""",
}


def test_failing_every_sweep_run_but_passing_alone_is_flaky_with_its_polluter(pytester,
                                                                               capsys):
    """One sweep run in the declared order: the victim fails after the polluter, as does
    the broken test. Alone and in the reversed order the victim passes: it is flaky,
    a state-leak with the polluter and a short reproducer; the broken test stays failing
    and says what was tried."""
    pytester.makeini(INI)
    for name, text in ALWAYS.items():
        pytester.makepyfile(**{name.removesuffix(".py"): text})
    report = pytester.path / "always.json"
    code, _, _ = run_main(["run", "--runs", "1", "--seed", "3", "--workers", "0", "--profiles",
                           "none", "--no-progress", "--no-history", "--json", str(report)],
                          capsys)
    assert code == 1
    tests = {t["nodeid"].split("::")[-1]: t for t in json.loads(report.read_text())["tests"]}
    victim, broken = tests["test_victim"], tests["test_broken"]
    assert (victim["verdict"], victim["category"]) == ("flaky", "state-leak")
    assert victim["polluter"] == ["test_a_polluter.py::test_polluter"]
    assert victim["evidence"][0].startswith("failed every sweep run (1/1); alone: failed 0/")
    assert "reproducer failed 3/3" in victim["confidence"]
    assert victim["reproduce"].split(" -p ")[0].endswith(
        "python -m pytest test_a_polluter.py::test_polluter test_b_victim.py::test_victim")
    assert broken["verdict"] == "failing"
    assert broken["evidence"][-1].endswith(
        "alone: failed 1/1 first runs in a fresh process; in another order (a sweep run's, "
        "reversed): failed 1/1: it failed there too: failing")
