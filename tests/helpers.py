"""Helpers shared by flakehunt's own tests (imported as ``helpers``).

Nothing here is random or timed: flaky behaviour in the suites the tests build
comes from counter files guarded by ``flock`` (a test fails on exactly its Nth
execution, whatever the concurrency) or from module-level state that another
test pollutes.
"""

from __future__ import annotations

import os
import signal
import textwrap
import time
from pathlib import Path

import pytest

from flakehunt.model import Outcome, RunResult, RunSpec, TestResult

DATA = Path(__file__).parent / "data"

#: pytest.ini for every suite a test builds: pins the rootdir and silences
#: pytest-asyncio's configuration warning in the children's output
SUITE_INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"


def counter_source(counter: Path, fail_on: tuple[int, ...], action: str) -> str:
    """Python lines that bump ``counter`` under an exclusive lock and run ``action``
    when this execution's number is in ``fail_on``. Meant for a test body."""
    return textwrap.dedent(f"""\
        import fcntl as _fcntl, os as _os
        with open({str(counter)!r}, "a+") as _fh:
            _fcntl.flock(_fh, _fcntl.LOCK_EX)
            _fh.seek(0)
            _n = len(_fh.read()) + 1
            _fh.write("x")
            _fh.flush()
        if _n in {tuple(fail_on)!r}:
            {action}
        """)


def indent(text: str, by: int = 4) -> str:
    return textwrap.indent(text, " " * by)


def make_suite(pytester: pytest.Pytester, **files: str) -> Path:
    """Write an ini plus ``name=source`` test modules into pytester.path."""
    pytester.makeini(SUITE_INI)
    for name, source in files.items():
        pytester.makepyfile(**{name: textwrap.dedent(source)})
    return pytester.path


def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    """Call flakehunt.cli.main and return (exit code, stdout, stderr)."""
    from flakehunt.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    code = exc.value.code
    return (code if isinstance(code, int) else (0 if code is None else 1)), out, err


# -- synthetic results ---------------------------------------------------------
def result(nodeid: str, outcome: Outcome | str, worker: str = "main",
           position: int | None = None) -> TestResult:
    return TestResult(nodeid, Outcome(outcome), worker, position)


def run_result(index: int, results: list[TestResult], order: str = "declared",
               workers: int = 0, profile: str = "none", status: str = "ok") -> RunResult:
    spec = RunSpec(index=index, order=order, workers=workers, profile=profile)
    return RunResult(spec, status, 0, 1.0, tuple(results), f"/tmp/run-{index:04d}")


# -- hostile suites: every process they start records its pid ------------------------
#: env var naming the file every process of a hostile suite appends "pid starttime role" to
PIDS_ENV = "FLAKEHUNT_TEST_PIDS"

#: ``fh_pids.py`` for a suite: ``record()`` this process (or a pid), ``spawn_sleeper()`` a
#: grandchild that ignores SIGTERM and would sleep 10 minutes, recorded too; ``bump()`` a
#: counter file under flock and return this execution's number
PIDS_MODULE = f'''\
import fcntl, os, subprocess, sys


def bump(path):
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        n = len(fh.read()) + 1
        fh.write("x")
    return n


def start_time(pid):
    with open(f"/proc/{{pid}}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[19]


def record(role, pid=None):
    path = os.environ.get({PIDS_ENV!r})
    if not path:
        return
    pid = pid or os.getpid()
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write(f"{{pid}} {{start_time(pid)}} {{role}}\\n")


def spawn_sleeper(role="grandchild"):
    child = subprocess.Popen([sys.executable, "-c", "import signal, time; "
                              "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
    record(role, child.pid)
    return child
'''

#: conftest lines: every pytest process (collection, runs, xdist workers) records itself
CONFTEST_RECORD = '''\
import os

import fh_pids


def pytest_configure(config):
    fh_pids.record(os.environ.get("PYTEST_XDIST_WORKER", "main"))
'''


def proc_state(pid: int, start: str) -> str | None:
    """The process's state letter, or None when it is gone (or the pid was reused)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    if fields[19] != start:
        return None  # another process got the pid
    return fields[0]


def recorded_pids(path: Path) -> list[tuple[int, str, str]]:
    out = []
    for line in path.read_text().splitlines() if path.exists() else ():
        pid, start, role = line.split(" ", 2)
        out.append((int(pid), start, role))
    return out


def still_alive(path: Path) -> list[str]:
    """Recorded processes that still run (a zombie is dead: it only waits to be reaped)."""
    return [f"{pid} ({role}, state {state})" for pid, start, role in recorded_pids(path)
            if (state := proc_state(pid, start)) not in (None, "Z", "X")]


def wait_all_gone(path: Path, timeout: float = 2.0) -> list[str]:
    """Poll until every recorded process is gone; return those that never went. The
    bound only gives SIGKILLed processes time to be torn down: nothing is raced."""
    deadline = time.monotonic() + timeout
    while (alive := still_alive(path)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


def kill_recorded(path: Path) -> None:
    """SIGKILL every recorded process still alive (by pid, checked against its start time)."""
    for pid, start, _ in recorded_pids(path):
        if proc_state(pid, start) not in (None, "Z", "X"):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# -- hostile JUnit XML ----------------------------------------------------------------
def billion_laughs() -> str:
    entities = "".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
        for i in range(1, 10))
    return ('<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n' + entities
            + ']>\n<testsuites><testsuite name="x"><testcase classname="a" name="b">'
            '<properties><property name="flakehunt_nodeid" value="&lol9;"/></properties>'
            "</testcase></testsuite></testsuites>\n")


def external_entity(target: Path) -> str:
    return ('<?xml version="1.0"?>\n'
            f'<!DOCTYPE testsuites [<!ENTITY xxe SYSTEM "file://{target}">]>\n'
            '<testsuites><testsuite name="x"><testcase classname="a" name="b">'
            '<failure message="&xxe;">&xxe;</failure></testcase></testsuite></testsuites>\n')
