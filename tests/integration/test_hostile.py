"""Issue 6: flakehunt survives hostile suites and bad input.

One test (or one parametrized test) per row of the issue's table, each against a
real suite built in pytester/tmp_path and real child processes. Every process a
hostile suite starts (the collection, each run, xdist workers, grandchildren it
spawns) appends "pid starttime role" to a file named by ``FLAKEHUNT_TEST_PIDS``
(helpers.PIDS_MODULE); after each hunt every one of them must be gone (zombies
count as gone). Misbehaviour is deterministic: counter files under flock pick the
execution that crashes, hangs or fails, and a test that hangs sleeps for 10
minutes, so only a kill ends it. Clocks only bound things with wide margins: how
long a hunt takes to stop once signalled (< 10 s for a 2 s promise), the run
timeout a hung xdist run must reach (8 s for a start-up of about 1 s).

A row that fails because flakehunt is wrong is kept and marked
``xfail(strict=True, reason="bug: ...")`` until it is fixed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
from helpers import (
    CONFTEST_RECORD,
    PIDS_ENV,
    PIDS_MODULE,
    SUITE_INI,
    billion_laughs,
    counter_source,
    external_entity,
    indent,
    kill_recorded,
    recorded_pids,
    run_main,
    wait_all_gone,
)

import flakehunt
from flakehunt import isolation
from flakehunt.cli import ISSUES_URL

PACKAGE_DIR = str(Path(flakehunt.__file__).parent)
QUICK = ("--no-progress", "--no-classify", "--profiles", "none", "--workers", "0")


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    """rich wraps at the terminal width: pin it, wide, so checks on lines are stable."""
    monkeypatch.setenv("COLUMNS", "250")


class PidLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    def roles(self) -> list[str]:
        return [role for _, _, role in recorded_pids(self.path)]

    def assert_all_gone(self, at_least: int = 1) -> None:
        """Every process the suite recorded is gone (not vacuous: ``at_least`` recorded)."""
        recorded = recorded_pids(self.path)
        assert len(recorded) >= at_least, f"only {len(recorded)} processes recorded: {recorded}"
        alive = wait_all_gone(self.path)
        assert not alive, f"still running after the hunt: {alive}"


@pytest.fixture
def pids(tmp_path, monkeypatch):
    path = tmp_path / "pids.txt"
    path.touch()
    monkeypatch.setenv(PIDS_ENV, str(path))
    yield PidLog(path)
    kill_recorded(path)  # a failing test must not leave a hostile process behind


def write_suite(root: Path, ini: str = SUITE_INI, **files: str) -> Path:
    """``fh_pids.py``, a recording conftest and ``name=source`` modules in ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pytest.ini").write_text(ini)
    (root / "fh_pids.py").write_text(PIDS_MODULE)
    files.setdefault("conftest", CONFTEST_RECORD)
    for name, source in files.items():
        (root / f"{name}.py").write_text(textwrap.dedent(source))
    return root


@pytest.fixture
def suite(pytester, pids):
    """Build a recording suite in pytester.path (the cwd) and return its path."""
    def build(ini: str = SUITE_INI, **files: str) -> Path:
        return write_suite(pytester.path, ini, **files)

    return build


def own_traceback(*texts: str) -> bool:
    """True when a traceback or a frame of flakehunt's own code reached the user."""
    text = "\n".join(texts)
    return "Traceback (most recent call last)" in text or f'File "{PACKAGE_DIR}' in text


def hunt(capsys, *args: str, runs: int = 2, report: Path | None = None,
         quick: tuple[str, ...] = QUICK) -> tuple[int, dict | None, str, str]:
    """main(["run", ...]) in-process -> (exit code, JSON report or None, stdout, stderr)."""
    argv = ["run", *args, "--runs", str(runs), "--seed", "1", *quick]
    if report is not None:
        argv += ["--json", str(report)]
    code, out, err = run_main(argv, capsys)
    data = json.loads(report.read_text()) if report is not None and report.exists() else None
    return code, data, out, err


def by_name(data: dict) -> dict[str, dict]:
    return {t["nodeid"].split("::", 1)[1]: t for t in data["tests"]}


def error_lines(err: str) -> list[str]:
    return [line for line in err.strip().splitlines() if line.strip()]


# -- path or node id that does not exist; bad option values ---------------------------------
OK_SUITE = {"test_ok_sample": "def test_one():\n    pass\n\n\ndef test_two():\n    pass\n"}


@pytest.mark.parametrize("args, needle", [
    (["--runs", "-1"], "--runs"),
    (["--runs", "many"], "--runs"),
    (["--workers", "0,x"], "--workers"),
    (["--workers", "-2"], "--workers"),
    (["--profiles", "turbo"], "turbo"),
    (["--dist", "bogus"], "bogus"),
    (["--run-timeout", "0"], "--run-timeout"),
    (["--run-timeout", "-3"], "--run-timeout"),
    (["--run-timeout", "nan"], "--run-timeout"),  # elapsed > nan is never true: no timeout
    (["--jobs", "-1"], "--jobs"),
    (["--seed", "x"], "--seed"),
    (["--json", "."], "--json"),
])
def test_bad_option_value_is_one_line_exit_2(suite, pids, capsys, args, needle):
    suite(**OK_SUITE)
    code, out, err = run_main(["run", "test_ok_sample.py", "--runs", "2", *QUICK, *args], capsys)
    assert code == 2, (out, err)
    assert len(error_lines(err)) == 1, err
    assert err.startswith("flakehunt: error:") and needle in err, err
    assert not own_traceback(out, err)
    assert pids.roles() == []  # refused before anything ran
    pids.assert_all_gone(at_least=0)


@pytest.mark.parametrize("workdir", ["/dev/full", "{suite}/test_ok_sample.py/sub"], ids=[
    "a-device", "under-a-file"])
def test_unusable_workdir_is_one_line_exit_2_or_4(suite, pids, capsys, workdir):
    root = suite(**OK_SUITE)
    code, _, out, err = hunt(capsys, "test_ok_sample.py", "--workdir",
                             workdir.format(suite=root))
    assert code in (2, 4), (out, err)
    assert len(error_lines(err)) == 1 and "--workdir" in err, err
    assert not own_traceback(out, err)
    pids.assert_all_gone(at_least=0)


def test_nonexistent_path_is_one_line_exit_4(suite, pids, capsys, tmp_path):
    suite(**OK_SUITE)
    code, _, out, err = hunt(capsys, "no_such_dir/test_nope.py", "--workdir",
                             str(tmp_path / "work"))
    assert code == 4, (out, err)
    assert error_lines(err) == [("flakehunt: error: file or directory not found: "
                                 "no_such_dir/test_nope.py")]
    assert not own_traceback(out, err)
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["collect"]
    pids.assert_all_gone(at_least=1)


def test_nonexistent_node_id_is_one_line_exit_4(suite, pids, capsys):
    suite(**OK_SUITE)
    code, _, out, err = hunt(capsys, "test_ok_sample.py::test_nope")
    assert code == 4, (out, err)
    lines = error_lines(err)
    assert len(lines) == 1 and "test_ok_sample.py::test_nope" in lines[0], err
    assert "not found" in lines[0]
    assert not own_traceback(out, err)
    pids.assert_all_gone(at_least=1)


def test_bad_pytest_argument_exit_4_names_it(suite, pids, capsys):
    suite(**OK_SUITE)
    code, out, err = run_main(["run", "test_ok_sample.py", "--runs", "2", *QUICK, "--",
                               "--no-such-pytest-option"], capsys)
    assert code == 4, (out, err)
    assert err.startswith("flakehunt: error:")
    assert "unrecognized arguments: --no-such-pytest-option" in err
    assert len(error_lines(err)) <= 6, err
    assert not own_traceback(out, err)
    pids.assert_all_gone(at_least=0)  # pytest refused its arguments before configuring


# -- nothing collected ---------------------------------------------------------------------------
@pytest.mark.parametrize("selection, pytest_args", [
    (["test_empty_sample.py"], []),
    (["empty_dir"], []),
    (["test_ok_sample.py"], ["--", "-k", "no_such_keyword"]),
], ids=["empty-file", "empty-dir", "all-deselected"])
def test_nothing_collected_exit_5(suite, pids, capsys, tmp_path, selection, pytest_args):
    root = suite(test_empty_sample="X = 1\n", **OK_SUITE)
    (root / "empty_dir").mkdir()
    code, out, err = run_main(["run", *selection, "--runs", "2", *QUICK, "--workdir",
                               str(tmp_path / "work"), *pytest_args], capsys)
    assert code == 5, (out, err)
    assert len(error_lines(err)) == 1 and "no tests collected" in err, err
    assert not own_traceback(out, err)
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["collect"]
    assert pids.roles() == ["main"]  # collected once, never run
    pids.assert_all_gone(at_least=1)


# -- collection errors ---------------------------------------------------------------------------
CONFTEST_IMPORT_ERROR = CONFTEST_RECORD + "\nfh_pids.record('conftest')\nimport no_such_module_fh\n"


@pytest.mark.parametrize("files, needle, recorded", [
    ({"test_syntax_sample": "def test_x(:\n    pass\n"}, "SyntaxError", ["main"]),
    ({"conftest": CONFTEST_IMPORT_ERROR}, "No module named 'no_such_module_fh'", ["conftest"]),
], ids=["syntax-error", "conftest-import-error"])
def test_collection_error_exit_4_before_any_run(suite, pids, capsys, tmp_path, files, needle,
                                                recorded):
    suite(**OK_SUITE, **files)
    work = tmp_path / "work"
    code, _, out, err = hunt(capsys, "--workdir", str(work), runs=4)
    assert code == 4, (out, err)
    assert err.startswith("flakehunt: error: pytest could not collect the suite")
    assert needle in err
    assert len(error_lines(err)) <= 15, err  # pytest's error, briefly
    assert not own_traceback(out, err)
    assert sorted(p.name for p in work.iterdir()) == ["collect"]  # no run-0000: nothing wasted
    assert pids.roles() == recorded  # one pytest process: the collection
    pids.assert_all_gone(at_least=1)


# -- a test crashes its run ----------------------------------------------------------------------
CRASHES = {"os-exit": ("_os._exit(3)", 3), "segfault": ("__import__('ctypes').string_at(0)", -11)}


def crash_suite(root: Path, action: str, on: tuple[int, ...]) -> None:
    counter = root / "crash-counter.txt"
    write_suite(root, test_crash_sample=f"""
def test_before():
    pass


def test_crash():
{indent(counter_source(counter, on, action))}


def test_after():
    pass
""")


@pytest.mark.parametrize("kind", list(CRASHES))
def test_crashed_run_names_the_test_and_other_runs_go_on(pytester, pids, capsys, kind):
    action, exit_code = CRASHES[kind]
    crash_suite(pytester.path, action, on=(2,))
    code, data, out, err = hunt(capsys, runs=2, report=pytester.path / "report.json")

    assert code == 1, (out, err)  # passed once, crashed once: flaky
    assert Counter(r["status"] for r in data["runs"]) == {"ok": 1, "crashed": 1}, data["runs"]
    [crashed] = [r for r in data["runs"] if r["status"] == "crashed"]
    assert crashed["crashed_test"] == "test_crash_sample.py::test_crash"
    assert crashed["exit_code"] == exit_code
    assert crashed["outcomes"]["crashed"] == 1 and crashed["outcomes"].get("passed", 0) <= 2
    for r in data["runs"]:
        if r["status"] == "ok":
            assert (r["exit_code"], r["outcomes"]) == (0, {"passed": 3}), r
    tests = by_name(data)
    crash = tests["test_crash"]
    assert (crash["verdict"], crash["crashed"], crash["passed"]) == ("flaky", 1, 1)
    [message] = crash["messages"]
    assert re.fullmatch(r"the run died( \(killed by SIGSEGV\))? while this test was running",
                        message), message
    assert any("crashed while running test_crash_sample.py::test_crash" in w
               for w in data["warnings"])
    text = out + err
    assert "test_crash_sample.py::test_crash  flaky" in text
    assert "crashed while running test_crash_sample.py::test_crash" in text
    assert not own_traceback(out, err)
    assert Counter(pids.roles()) == {"main": 3}  # the collection and two runs
    pids.assert_all_gone(at_least=3)


def test_segfault_is_reported_with_crash_evidence(pytester, pids, capsys):
    crash_suite(pytester.path, CRASHES["segfault"][0], on=(1,))
    _, data, out, err = hunt(capsys, runs=1, report=pytester.path / "report.json")
    [run] = data["runs"]
    assert (run["status"], run["crashed_test"]) == ("crashed", "test_crash_sample.py::test_crash")
    pids.assert_all_gone(at_least=2)
    evidence = run["note"] + " ".join(by_name(data)["test_crash"]["messages"])
    assert re.search(r"Segmentation fault|SIGSEGV", evidence), evidence
    assert re.search(r"Segmentation fault|SIGSEGV", out + err), out + err
    assert "test_crash_sample.py\", line" in run["note"] or "in test_crash" in run["note"], run


@pytest.fixture(scope="module")
def xdist_crash(tmp_path_factory):
    """One run, two workers; test_crash kills its worker every time. Shared."""
    base = tmp_path_factory.mktemp("xdist-crash")
    pid_file = base / "pids.txt"
    crash_suite(base / "suite", CRASHES["segfault"][0], on=(1,))
    proc = start_flakehunt(base / "suite", "--runs", "1", "--seed", "1", "--no-progress",
                           "--no-classify", "--profiles", "none", "--workers", "2", "--json",
                           str(base / "report.json"), env={PIDS_ENV: str(pid_file)})
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    yield proc.returncode, json.loads((base / "report.json").read_text()), out, err, PidLog(
        pid_file)
    kill_recorded(pid_file)


def test_xdist_worker_crash_names_the_test_and_the_run_goes_on(xdist_crash):
    code, data, out, err, pids = xdist_crash
    [run] = data["runs"]
    assert run["crashed_test"] == "test_crash_sample.py::test_crash", run
    assert run["outcomes"] == {"passed": 2, "crashed": 1}, run  # xdist went on without it
    tests = by_name(data)
    assert (tests["test_crash"]["verdict"], tests["test_crash"]["crashed"]) == ("failing", 1)
    assert "crashed" in tests["test_crash"]["messages"][0]
    assert tests["test_before"]["verdict"] == tests["test_after"]["verdict"] == "stable"
    assert code == 0, (out, err)
    assert not own_traceback(out, err)
    roles = Counter(pids.roles())
    assert roles["main"] == 2 and roles["gw0"] == roles["gw1"] == 1, roles  # + a replacement
    pids.assert_all_gone(at_least=4)


def test_xdist_worker_crash_marks_the_run_crashed(xdist_crash):
    _, data, _, _, pids = xdist_crash
    [run] = data["runs"]
    assert run["status"] == "crashed", run
    assert any("crashed while running test_crash_sample.py::test_crash" in w
               for w in data["warnings"]), data["warnings"]
    pids.assert_all_gone(at_least=4)


# -- a test hangs --------------------------------------------------------------------------------
def test_hung_xdist_run_is_killed_with_its_whole_group(pytester, pids, capsys):
    """The hung test ignores SIGTERM and leaves a grandchild that ignores it too; the run
    timeout must take the controller, both xdist workers and the grandchild."""
    write_suite(pytester.path, test_hang_sample="""
import signal
import time

import fh_pids


def test_ok_1():
    pass


def test_hang():
    fh_pids.spawn_sleeper()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(600)


def test_ok_2():
    pass
""")
    timeout = 15.0  # generous: only the xdist start-up has to fit in it, on a busy machine too
    started = time.monotonic()
    code, data, out, err = hunt(capsys, "--run-timeout", str(timeout), runs=1,
                                report=pytester.path / "report.json",
                                quick=("--no-progress", "--no-classify", "--profiles", "none",
                                       "--workers", "2"))
    took = time.monotonic() - started
    [run] = data["runs"]
    assert run["workers"] == 2
    assert run["status"] == "timeout", run
    assert run["crashed_test"] == "test_hang_sample.py::test_hang"
    tests = by_name(data)
    hang = tests["test_hang"]
    assert (hang["verdict"], hang["crashed"]) == ("failing", 1)
    assert hang["messages"] == ["timed out while this test was running"]
    assert tests["test_ok_1"]["verdict"] == tests["test_ok_2"]["verdict"] == "stable"
    assert any("timeout while running test_hang_sample.py::test_hang" in w
               for w in data["warnings"])
    assert "timeout while running test_hang_sample.py::test_hang" in out + err
    assert code == 0, (out, err)  # failing, not flaky
    assert not own_traceback(out, err)
    assert Counter(pids.roles()) == {"main": 2, "gw0": 1, "gw1": 1, "grandchild": 1}
    pids.assert_all_gone(at_least=5)
    assert took < timeout + 20, f"the hunt took {took:.1f}s with a {timeout}s run timeout"


# -- Ctrl-C / SIGTERM ----------------------------------------------------------------------------
HANG_ON_SECOND = """
import signal
import time
from pathlib import Path

import fh_pids


def hang():
    fh_pids.spawn_sleeper()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    Path(__file__).with_name("hanging").write_text("x")
    time.sleep(600)


def test_ok():
    pass


def test_hang():
{body}
"""


def start_flakehunt(root: Path, *args: str, env: dict[str, str] | None = None
                    ) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "flakehunt", "run", *args], cwd=root,
                            env={**os.environ, "COLUMNS": "250", **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=default_sigint)


def default_sigint() -> None:
    """Ctrl-C as a terminal delivers it: a test suite started in the background by a
    non-interactive shell inherits SIGINT ignored, and Python then never raises
    KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(marker: Path, proc: subprocess.Popen, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not marker.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"flakehunt ended (exit {proc.returncode}) before {marker.name}:\n"
                        f"{out}\n{err}")
        if time.monotonic() > deadline:
            pytest.fail(f"{marker.name} never appeared in {limit}s")
        time.sleep(0.02)


def stop(proc: subprocess.Popen, sig: int) -> tuple[float, str, str]:
    """Send ``sig`` to flakehunt; return (seconds until it exited, stdout, stderr)."""
    sent = time.monotonic()
    os.kill(proc.pid, sig)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # our own child's group; the suite's are recorded
        out, err = proc.communicate()
        pytest.fail(f"flakehunt still running 60s after {signal.Signals(sig).name}:\n{out}\n{err}")
    return time.monotonic() - sent, out, err


def signal_when(marker: Path, proc: subprocess.Popen, sig: int) -> tuple[float, str, str]:
    """Wait for ``marker``, then stop flakehunt with ``sig`` (see ``stop``); whatever
    happens, flakehunt's own process group does not outlive the test."""
    try:
        wait_for(marker, proc)
        return stop(proc, sig)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


class Interrupted:
    """What a hunt stopped by a signal left: its process, timing, report and output."""

    def __init__(self, sig: int, proc: subprocess.Popen, took: float, data: dict, out: str,
                 err: str, pids: PidLog) -> None:
        self.sig, self.proc, self.took, self.data = sig, proc, took, data
        self.out, self.err, self.pids = out, err, pids


@pytest.fixture(scope="module", params=[(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                ids=["ctrl-c", "sigterm"])
def interrupted(request, tmp_path_factory):
    """Hunt a suite whose second run hangs, one run at a time (run 0 passes, run 1 hangs,
    run 2 never starts), and send the signal once run 1 hangs. Once per signal, shared."""
    sig, expected = request.param
    base = tmp_path_factory.mktemp("interrupted")
    pid_file = base / "pids.txt"
    root = write_suite(base / "suite", test_sig_sample=HANG_ON_SECOND.format(
        body=indent(counter_source(base / "counter.txt", (2,), "hang()"))))
    report = base / "report.json"
    proc = start_flakehunt(root, "--runs", "3", "--jobs", "1", "--seed", "1", *QUICK,
                           "--json", str(report), env={PIDS_ENV: str(pid_file)})
    took, out, err = signal_when(root / "hanging", proc, sig)
    data = json.loads(report.read_text()) if report.exists() else {}
    yield expected, Interrupted(sig, proc, took, data, out, err, PidLog(pid_file))
    kill_recorded(pid_file)


def test_signal_stops_the_hunt_kills_children_and_writes_the_partial_report(interrupted):
    expected, it = interrupted
    name = signal.Signals(it.sig).name
    assert it.took < 10, f"flakehunt took {it.took:.2f}s to stop after {name}"
    assert it.proc.returncode == expected, (it.proc.returncode, it.out, it.err)
    assert not own_traceback(it.out, it.err)
    assert "interrupted, partial results" in it.out
    assert it.data["interrupted"] == expected
    first = [r for r in it.data["runs"] if r["index"] == 0]
    assert first and (first[0]["status"], first[0]["outcomes"]) == ("ok", {"passed": 2})
    assert all(r["status"] in ("ok", "interrupted") for r in it.data["runs"]), it.data["runs"]
    assert Counter(it.pids.roles()) == {"main": 3, "grandchild": 1}  # collect, run 0, run 1
    it.pids.assert_all_gone(at_least=4)


def test_interrupt_does_not_blame_the_test_it_stopped(interrupted):
    expected, it = interrupted
    assert it.proc.returncode == expected, (it.out, it.err)
    it.pids.assert_all_gone(at_least=4)
    hang = by_name(it.data)["test_hang"]
    assert (hang["verdict"], hang["crashed"], hang["passed"]) == ("stable", 0, 1), hang
    assert "test_sig_sample.py::test_hang  flaky" not in it.out


@pytest.mark.parametrize("sig, expected", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["ctrl-c", "sigterm"])
def test_signal_during_collection_kills_the_collection_group(tmp_path, pids, sig, expected):
    root = write_suite(tmp_path / "suite", conftest=CONFTEST_RECORD + """
import time
from pathlib import Path

fh_pids.record("collect")
fh_pids.spawn_sleeper()
Path(__file__).with_name("hanging").write_text("x")
time.sleep(600)
""", **OK_SUITE)
    proc = start_flakehunt(root, "--runs", "2", *QUICK)
    took, out, err = signal_when(root / "hanging", proc, sig)
    assert took < 10, f"flakehunt took {took:.2f}s to stop after {signal.Signals(sig).name}"
    assert proc.returncode == expected, (proc.returncode, out, err)
    assert not own_traceback(out, err)
    pids.assert_all_gone(at_least=2)  # the collection and the grandchild it started
    assert re.search(r"interrupted|terminated", err), err


def test_hanging_collection_is_bounded_by_the_run_timeout(tmp_path, pids):
    root = write_suite(tmp_path / "suite", conftest=CONFTEST_RECORD + """
import time

fh_pids.record("collect")
time.sleep(600)
""", **OK_SUITE)
    # the timeout leaves the collection time to reach the conftest even on a machine
    # whose CPUs are all busy (start-up and importing pytest take seconds there)
    proc = start_flakehunt(root, "--runs", "2", "--run-timeout", "6", *QUICK)
    try:
        out, err = proc.communicate(timeout=36)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        kill_recorded(pids.path)
        pytest.fail(f"flakehunt still collecting 36s into a 6s --run-timeout:\n{out}\n{err}")
    assert proc.returncode == 4, (out, err)
    assert len(error_lines(err)) == 1 and "collection took longer than" in err, err
    pids.assert_all_gone(at_least=1)


# -- hostile JUnit XML ---------------------------------------------------------------------------
def test_run_whose_junit_is_replaced_is_recorded_not_dropped(pytester, pids, capsys):
    """A suite's conftest swaps the first session's junit.xml for a billion-laughs file."""
    sessions = pytester.path / "sessions.txt"
    write_suite(pytester.path, conftest=CONFTEST_RECORD + f"""
from pathlib import Path

LAUGHS = {billion_laughs()!r}


def pytest_unconfigure(config):
    xml = getattr(config.option, "xmlpath", None)
    if not xml:
        return  # the collection
    if fh_pids.bump({str(sessions)!r}) == 1:
        Path(xml).write_text(LAUGHS)
""", test_xml_sample="""
def test_one():
    pass


def test_two():
    assert 1 + 1 == 2
""")
    code, data, out, err = hunt(capsys, runs=2, report=pytester.path / "report.json")
    assert code == 0, (out, err)
    assert len(data["runs"]) == 2
    assert Counter(r["status"] for r in data["runs"]) == {"ok": 1, "unreadable": 1}
    [bad] = [r for r in data["runs"] if r["status"] == "unreadable"]
    assert "DOCTYPE" in bad["note"] and "refused" in bad["note"], bad["note"]
    assert bad["outcomes"] == {"passed": 2}  # recovered from the event stream
    for t in data["tests"]:
        assert (t["verdict"], t["runs"], t["passed"]) == ("stable", 2, 2), t
    assert any("unreadable" in w for w in data["warnings"])
    assert not own_traceback(out, err)
    pids.assert_all_gone(at_least=3)


@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> tuple[Path, tuple[str, ...]]:
    """One real run folder (JUnit XML, event stream, log) of a passing, failing and
    skipping test, made by a real hunt."""
    base = tmp_path_factory.mktemp("real-run")
    root = write_suite(base / "suite", conftest="", test_real_sample="""
import pytest


def test_pass():
    pass


def test_fail():
    assert 2 + 2 == 5, "arithmetic"


def test_skip():
    pytest.skip("no")
""")
    proc = subprocess.run([sys.executable, "-m", "flakehunt", "run", "--runs", "1", *QUICK,
                           "--workdir", str(base / "work")], cwd=root, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    known = ("test_real_sample.py::test_pass", "test_real_sample.py::test_fail",
             "test_real_sample.py::test_skip")
    return base / "work" / "run-0000", known


def summary(run) -> list[tuple]:
    return sorted((r.nodeid, r.outcome.value, r.worker, r.position) for r in run.results)


def sparse(path: Path) -> None:
    from flakehunt.junit import MAX_BYTES

    with open(path, "wb") as fh:
        fh.write(b'<?xml version="1.0"?><testsuites>')
        fh.truncate(MAX_BYTES + 1)  # a hole: huge on paper, nothing on disk


HOSTILE_XML = {
    "empty": lambda path, secret: path.write_bytes(b""),
    "truncated": lambda path, secret: path.write_bytes(
        path.read_bytes()[: len(path.read_bytes()) // 2]),
    "garbage": lambda path, secret: path.write_bytes(b"\x00\xff\xfe not xml " * 100),
    "html": lambda path, secret: path.write_text("<html><body>502 Bad Gateway</body></html>"),
    "billion-laughs": lambda path, secret: path.write_text(billion_laughs()),
    "xxe": lambda path, secret: path.write_text(external_entity(secret)),
    "huge": lambda path, secret: sparse(path),
    "deeply-nested": lambda path, secret: path.write_text(
        "<testsuites>" + "<testsuite>" * 5000 + "</testsuite>" * 5000 + "</testsuites>"),
}


@pytest.mark.parametrize("kind", list(HOSTILE_XML))
def test_hostile_junit_marks_the_run_unreadable_and_keeps_the_events(real_run, tmp_path, kind):
    from flakehunt.model import RunSpec
    from flakehunt.parse import parse_run

    source, known = real_run
    intact = parse_run(RunSpec(index=0), source, 1, "ok", 1.0, known)
    assert intact.status == "ok" and len(intact.results) == 3
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    rundir = tmp_path / "run-0000"
    shutil.copytree(source, rundir)
    HOSTILE_XML[kind](rundir / "junit.xml", secret)

    started = time.monotonic()
    run = parse_run(RunSpec(index=0), rundir, 1, "ok", 1.0, known)
    took = time.monotonic() - started

    assert run.status == "unreadable", run
    assert run.note.startswith("junit.xml"), run.note
    assert summary(run) == summary(intact)  # every result recovered from the event stream
    failed = next(r for r in run.results if r.nodeid.endswith("test_fail"))
    assert "arithmetic" in failed.failure.message
    assert "TOP-SECRET-CONTENT" not in repr(run)
    assert took < 10, f"parsing took {took:.1f}s"  # nothing was expanded


# -- unicode, brackets, newlines, ANSI, workflow commands, HTML, Markdown ------------------------
HOSTILE_TEXT = [
    "ünïcødé ✓ 日本語 🐍",
    "[bold red]markup[/bold red] [link=http://x]y[/link] [/]",
    "two\nlines",
    "::error file=a.py,line=1::injected",
    "pct %0A %25 %0D",
    "<script>alert(1)</script>",
    "**md** _em_ `code` # h | a |",
]


def test_hostile_ids_and_messages_are_shown_verbatim(pytester, pids, capsys):
    root = pytester.path
    write_suite(root, test_text_sample=f"""
import pytest

import fh_pids

TEXT = {HOSTILE_TEXT!r}


@pytest.mark.parametrize("i", range(len(TEXT)), ids=TEXT)
def test_id(i):
    if fh_pids.bump(f"{root}/counter-id-{{i}}.txt") == 1:
        raise AssertionError(f"id {{i}}")


@pytest.mark.parametrize("i", range(len(TEXT)))
def test_message(i):
    if fh_pids.bump(f"{root}/counter-message-{{i}}.txt") == 1:
        raise AssertionError(TEXT[i])
""")
    code, data, out, err = hunt(capsys, report=root / "report.json")
    assert code == 1, (out, err)
    ids = [t["nodeid"] for t in data["tests"] if "::test_id[" in t["nodeid"]]
    assert len(ids) == len(HOSTILE_TEXT)
    lines = out.splitlines()
    for nodeid in ids:  # as pytest prints it: non-ASCII and newlines escaped by pytest
        assert f"{nodeid}  flaky" in lines, nodeid
    for text in HOSTILE_TEXT:
        first = text.splitlines()[0]
        assert f"  message: AssertionError: {first}" in lines, first
    assert "[bold red]markup[/bold red]" in out  # rich markup stays text
    assert "\x1b" not in out + err
    assert not own_traceback(out, err)
    pids.assert_all_gone(at_least=3)


def test_control_sequences_in_messages_never_reach_the_terminal(pytester, pids, capsys):
    root = pytester.path
    sessions = root / "sessions.txt"
    write_suite(root, conftest=CONFTEST_RECORD + f"""
import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    if not getattr(session.config.option, "xmlpath", None):
        return  # the collection
    if fh_pids.bump({str(sessions)!r}) == 1:
        os._exit(1)  # before junitxml writes: results come from the event stream
""", test_ansi_sample=f"""
import fh_pids


def test_ansi():
    if fh_pids.bump({str(root / "counter.txt")!r}) == 1:
        raise AssertionError("ansi \\x1b[31mred\\x1b[0m \\x1b]0;pwned title\\x07 \\x1b[2J end")
""")
    code, _, out, err = hunt(capsys, "--jobs", "1", report=root / "report.json")
    assert code == 1, (out, err)
    assert "message: AssertionError: ansi" in out  # the message is shown...
    assert "\x1b" not in out + err  # ...but never as live escape sequences
    assert "red" in out and "end" in out
    pids.assert_all_gone(at_least=3)


ESCAPE_OFF = (SUITE_INI + "disable_test_id_escaping_and_forfeit_all_rights_to_community_support"
              " = true\n")


def test_unescaped_unicode_ids_keep_their_identity(pytester, pids, capsys):
    """With pytest's id escaping off, ids are raw unicode/brackets/newlines: each test must
    still be one test, with every run counted, and shown as it is."""
    root = pytester.path
    raw = ["ünïcødé ✓ 日本語 🐍", "[bold]x[/bold]", "two\nlines", "<script>x</script>"]
    write_suite(root, ini=ESCAPE_OFF, test_raw_sample=f"""
import pytest

TEXT = {raw!r}


@pytest.mark.parametrize("i", range(len(TEXT)), ids=TEXT)
def test_raw(i):
    pass
""")
    code, data, out, err = hunt(capsys, report=root / "report.json")
    assert code == 0, (out, err)
    assert sorted(t["nodeid"] for t in data["tests"]) == sorted(
        f"test_raw_sample.py::test_raw[{t}]" for t in raw)
    for t in data["tests"]:
        assert (t["verdict"], t["runs"]) == ("stable", 2), t
    pids.assert_all_gone(at_least=3)


def test_unescaped_id_with_a_control_character_keeps_its_identity(pytester, pids, capsys):
    root = pytester.path
    write_suite(root, ini=ESCAPE_OFF, test_ctl_sample="""
import pytest


@pytest.mark.parametrize("i", [0], ids=["ansi \\x1b[31mred\\x1b[0m"])
def test_ctl(i):
    pass
""")
    _, data, _, _ = hunt(capsys, report=root / "report.json")
    assert [(t["nodeid"], t["verdict"], t["runs"]) for t in data["tests"]] == [
        ("test_ctl_sample.py::test_ctl[ansi \x1b[31mred\x1b[0m]", "stable", 2)]
    pids.assert_all_gone(at_least=3)


# -- report path unwritable, disk full -----------------------------------------------------------
FLAKY_SUITE = """
def test_steady():
    pass


def test_flaky():
{body}
"""


@pytest.mark.parametrize("target, reason", [
    ("/dev/full", "No space left on device"),
    ("{tmp}/a-file/report.json", None),
    ("/proc/flakehunt-report.json", None),
], ids=["disk-full", "under-a-file", "read-only-fs"])
def test_unwritable_report_exit_4_after_the_console_results(pytester, pids, capsys, tmp_path,
                                                            target, reason):
    root = pytester.path
    write_suite(root, test_flaky_sample=FLAKY_SUITE.format(body=indent(counter_source(
        root / "counter.txt", (1,), "raise AssertionError('first time')"))))
    (tmp_path / "a-file").write_text("x")
    path = target.format(tmp=tmp_path)
    code, out, err = run_main(["run", "--runs", "2", "--seed", "1", *QUICK, "--json", path],
                              capsys)
    assert code == 4, (out, err)
    last = error_lines(err)[-1]
    assert last.startswith(f"flakehunt: error: cannot write {path}: "), err
    assert reason is None or last.endswith(reason), err
    assert "test_flaky_sample.py::test_flaky  flaky" in out  # the results were still printed
    assert "1 flaky, 1 stable in 2 runs (seed 1)" in out
    assert not own_traceback(out, err)
    pids.assert_all_gone(at_least=3)


def test_json_to_a_full_stdout_exit_4(tmp_path, pids):
    root = write_suite(tmp_path / "suite", test_flaky_sample=FLAKY_SUITE.format(
        body=indent(counter_source(tmp_path / "counter.txt", (1,), "raise AssertionError('x')"))))
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "flakehunt", "run", "--runs", "2",
                               "--seed", "1", *QUICK, "--json", "-"], cwd=root, stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=120, check=False)
    err = proc.stderr
    assert proc.returncode == 4, err
    assert "No space left on device" in error_lines(err)[-1], err
    assert "1 flaky, 1 stable in 2 runs (seed 1)" in err  # console report on stderr
    assert not own_traceback(err)
    pids.assert_all_gone(at_least=3)


# -- a suite that writes into the working tree, changes cwd and env -------------------------------
VANDAL = """
import fcntl
import json
import os
from pathlib import Path

ROOT = Path(__file__).parent
CWD_AT_IMPORT = os.getcwd()


def look_then_vandalize(name, tmp_path, tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    sentinel = base / "sentinel"
    seen = {"test": name, "pid": os.getpid(), "cwd_at_import": CWD_AT_IMPORT,
            "leak": os.environ.get("FH_LEAK"), "addopts": os.environ.get("PYTEST_ADDOPTS"),
            "home": "HOME" in os.environ,
            "base": str(base), "tmp_empty": not any(tmp_path.iterdir()),
            "sentinel": sentinel.read_text() if sentinel.exists() else None}
    with open(os.environ["FH_VANDAL_LOG"], "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write(json.dumps(seen) + "\\n")
    # now break everything a test can reach
    os.environ["FH_LEAK"] = str(os.getpid())
    os.environ["PYTEST_ADDOPTS"] = "--definitely-not-an-option"
    os.environ.pop("HOME", None)
    sentinel.write_text(str(os.getpid()))
    (tmp_path / "junk").write_text("x")
    for name in ("junit.xml", "output.log", "collected.json", "events-main.jsonl"):
        (ROOT / name).write_text("<vandalized")
    (ROOT / "run-0000").mkdir(exist_ok=True)
    (ROOT / "run-0000" / "junit.xml").write_text("<vandalized")
    os.chdir(tmp_path)  # and never come back
    Path("junit.xml").write_text("<vandalized")


def test_first(tmp_path, tmp_path_factory):
    look_then_vandalize("first", tmp_path, tmp_path_factory)


def test_second(tmp_path, tmp_path_factory):
    look_then_vandalize("second", tmp_path, tmp_path_factory)
"""


def test_vandal_suite_runs_isolated_and_flakehunt_state_intact(pytester, pids, capsys,
                                                                 monkeypatch, tmp_path):
    root = pytester.path
    log = tmp_path / "vandal.jsonl"
    monkeypatch.setenv("FH_VANDAL_LOG", str(log))
    write_suite(root, conftest=CONFTEST_RECORD + "\nos.environ['FH_CONFTEST'] = 'set'\n",
                test_vandal_sample=VANDAL)
    work = tmp_path / "work"
    cwd, env = os.getcwd(), dict(os.environ)

    code, data, out, err = hunt(capsys, "--workdir", str(work), runs=2,
                                report=tmp_path / "report.json")

    # flakehunt's own process and files
    assert (os.getcwd(), dict(os.environ)) == (cwd, env)
    assert code == 0, (out, err)
    assert not own_traceback(out, err)
    [warning] = data["warnings"]  # it writes in its tree: its runs went one at a time
    assert warning.startswith("runs went one at a time: the suite writes in its tree (junit.xml")
    assert [(r["status"], r["exit_code"], r["outcomes"]) for r in data["runs"]] == [
        ("ok", 0, {"passed": 2})] * 2
    assert [(t["nodeid"], t["verdict"], t["runs"]) for t in data["tests"]] == [
        ("test_vandal_sample.py::test_first", "stable", 2),
        ("test_vandal_sample.py::test_second", "stable", 2)]
    # (warm: the warm parents' logs, flakehunt.pool)
    assert sorted(p.name for p in work.iterdir()) == ["collect", "run-0000", "run-0001", "warm"]
    for i in range(2):
        rundir = work / f"run-{i:04d}"
        assert not (rundir / "tmp").exists()
        assert (rundir / "junit.xml").read_text().startswith("<?xml")
    # the runs, as the tests saw them: each in a fresh process, started in the rootdir,
    # with its own basetemp, and nothing of another run's environment or files
    seen = [json.loads(line) for line in log.read_text().splitlines()]
    assert Counter(s["test"] for s in seen) == {"first": 2, "second": 2}
    bases, first_seen = {}, {}
    for s in seen:
        assert s["cwd_at_import"] == str(root) and s["tmp_empty"], s
        bases.setdefault(s["base"], set()).add(s["pid"])
        assert Path(s["base"]).parent.parent == work, s
        first_seen.setdefault(s["pid"], s)
    assert len(bases) == 2 and all(len(p) == 1 for p in bases.values()), bases
    for s in first_seen.values():  # what each run's first test found: nothing of the others
        assert (s["leak"], s["sentinel"], s["addopts"], s["home"]) == (None, None, None, True), s
    pids.assert_all_gone(at_least=3)


def test_relative_workdir_from_above_the_rootdir(pytester, pids, capsys):
    top = pytester.path
    write_suite(top / "suite", **OK_SUITE)
    code, data, out, err = hunt(capsys, "suite", "--workdir", "work",
                                report=top / "report.json")
    assert not (top / "suite" / "work").exists()  # nothing written into the suite's tree
    assert (top / "work" / "run-0000" / "junit.xml").is_file()
    assert code == 0, (out, err)
    assert [(t["verdict"], t["runs"]) for t in data["tests"]] == [("stable", 2)] * 2
    pids.assert_all_gone(at_least=3)


# -- the suite's interpreter lacks pytest, xdist or the plugin ------------------------------
def venv_with(path: Path, packages: list[str], with_flakehunt: bool) -> str:
    """A venv without pip whose site-packages links ``packages`` (and their dist-info)
    from this environment: a real interpreter with exactly those installed."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True,
                   timeout=120)
    [site] = path.glob("lib/python*/site-packages")
    here = Path(pytest.__file__).parent.parent
    for name in packages:
        for entry in [*here.glob(name), *here.glob(f"{name}.py"),
                      *here.glob(f"{name}-*.dist-info")]:
            (site / entry.name).symlink_to(entry)
    if with_flakehunt:
        (site / "flakehunt_source.pth").write_text(str(Path(PACKAGE_DIR).parent) + "\n")
    return str(path / "bin" / "python")


PYTEST_ONLY = ["pytest", "_pytest", "py", "pluggy", "iniconfig", "packaging", "pygments"]
XDIST = ["xdist", "pytest_xdist", "execnet"]


@pytest.mark.parametrize("packages, needs", [
    ([], "pytest pytest-xdist"),
    (PYTEST_ONLY, "pytest-xdist"),
], ids=["no-pytest", "no-xdist"])
def test_interpreter_without_what_the_runs_need_says_what_to_install(
        pytester, pids, capsys, tmp_path, packages, needs):
    python = venv_with(tmp_path / "venv", packages, with_flakehunt=False)
    write_suite(pytester.path, ini="[pytest]\n", **OK_SUITE)
    code, _, out, err = hunt(capsys, "--python", python)
    assert code == 4, (out, err)
    lines = error_lines(err)
    assert len(lines) == 1, err
    assert f"`{python} -m pip install {needs}`" in lines[0], err
    assert "flakehunt" not in lines[0].split("`")[1], err  # nothing of flakehunt's to install
    assert not own_traceback(out, err)
    pids.assert_all_gone(at_least=0)  # the interpreter failed before any conftest ran


def test_interpreter_without_flakehunt_runs_the_plugin_from_flakehunts_files(
        pytester, pids, capsys, tmp_path):
    # no pytest-repeat either: follow-ups repeat tests with the plugin's own --flakehunt-count
    python = venv_with(tmp_path / "venv", PYTEST_ONLY + XDIST, with_flakehunt=False)
    write_suite(pytester.path, ini="[pytest]\n", **OK_SUITE)
    code, data, out, err = hunt(capsys, "--python", python, report=tmp_path / "r.json")
    assert code == 0, (out, err)
    assert data is not None and [t["verdict"] for t in data["tests"]] == ["stable"] * 2


# -- internal errors ------------------------------------------------------------------------
def test_internal_error_mid_hunt_kills_the_runs_and_says_how_to_report(pytester, pids, capsys,
                                                                       monkeypatch):
    """The first finished run's parsing blows up while the other run hangs."""
    from flakehunt import parse as parse_module

    root = pytester.path
    # the first execution of test_hang waits until the second one hangs, so when the first
    # run ends (and its parsing fails) the other run is surely hanging
    write_suite(root, test_sig_sample=HANG_ON_SECOND.format(body=indent(f"""\
if fh_pids.bump({str(root / "counter.txt")!r}) == 2:
    hang()
deadline = time.monotonic() + 60
while not Path(__file__).with_name("hanging").exists() and time.monotonic() < deadline:
    time.sleep(0.01)""")))

    def broken(*args, **kwargs):
        raise RuntimeError("injected parse failure")

    monkeypatch.setattr(parse_module, "parse_run", broken)
    # two runs at once from the start (this suite writes in its tree: flakehunt would run
    # them one at a time, see test_isolation_e2e)
    monkeypatch.setattr(isolation.Isolation, "one_at_a_time", property(lambda self: False))
    code, _, out, err = hunt(capsys, "--jobs", "2", "--run-timeout", "600")
    assert code == 3, (out, err)
    assert "flakehunt: internal error: RuntimeError: injected parse failure" in err
    assert "--debug" in err and ISSUES_URL in err
    assert not own_traceback(out, err)
    assert Counter(pids.roles()) == {"main": 3, "grandchild": 1}
    pids.assert_all_gone(at_least=4)


def test_internal_error_traceback_only_under_debug(suite, pids, capsys, monkeypatch):
    from flakehunt import collect as collect_module

    suite(**OK_SUITE)

    def broken(*args, **kwargs):
        raise KeyError("injected")

    monkeypatch.setattr(collect_module, "relative_selection", broken)
    code, _, out, err = hunt(capsys)
    assert code == 3, (out, err)
    assert "flakehunt: internal error: KeyError" in err and ISSUES_URL in err
    assert not own_traceback(out, err)
    code, out, err = run_main(["--debug", "run", "--runs", "2", *QUICK], capsys)
    assert code == 3
    assert own_traceback(err)  # --debug: flakehunt's own frames
    pids.assert_all_gone(at_least=2)
