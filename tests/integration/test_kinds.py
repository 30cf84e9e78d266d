"""Follow-ups on every kind of test: real hunts of a small suite whose flaky tests are a
parametrized function, a ``unittest.TestCase`` method, an ``IsolatedAsyncioTestCase``
method, a method of a TestCase with ``setUpClass``, and a function using a
module-scoped fixture.

Each flaky test fails on exactly its 2nd execution anywhere (a counter file under
flock: one failing sweep run) and on its 2nd execution in any one process (a module
global: a run repeating it fails once, whatever runs beside it). Each one's follow-ups
must really run it (the repeats of its run alone are counted, not 0/0), and its
reproducer, run as printed, must run it as often as it says.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import SUITE_INI, counter_source, indent

from flakehunt.cli import main


def flaky_lines(work: Path, name: str) -> str:
    """A test body's lines: fail on the test's 2nd execution, in the hunt or in this process."""
    return (f"SEEN.setdefault({name!r}, []).append(1)\n"
            + counter_source(work / f"{name}.count", (2,),
                             "raise AssertionError('2nd execution of the hunt')")
            + f"assert len(SEEN[{name!r}]) != 2, '2nd execution in this process'\n")


def set_up_lines(work: Path, name: str) -> str:
    """Count a class's or module's set-up, one line per set-up, with its process."""
    return (f"with open({str(work / (name + '.setups'))!r}, 'a') as _fh:\n"
            f"    _fh.write(str(_os.getpid()) + '\\n')\n")


def suite_files(work: Path) -> dict[str, str]:
    return {
        "test_param.py": f"""
import os as _os

import pytest

SEEN = {{}}


@pytest.mark.parametrize("p", ["a", "b-1"])
def test_param(p):
    if p == "a":
        return
{indent(flaky_lines(work, "param"))}
""",
        "test_unit.py": f"""
import os as _os
import unittest

SEEN = {{}}


class TestPlain(unittest.TestCase):
    def test_plain(self):
{indent(flaky_lines(work, "plain"), 8)}


class TestAsync(unittest.IsolatedAsyncioTestCase):
    async def test_async(self):
{indent(flaky_lines(work, "async"), 8)}


class TestClassSetUp(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
{indent(set_up_lines(work, "class"), 8)}

    def test_with_class(self):
{indent(flaky_lines(work, "class"), 8)}
""",
        "test_module.py": f"""
import os as _os

import pytest

SEEN = {{}}


@pytest.fixture(scope="module")
def resource():
{indent(set_up_lines(work, "module"))}
    return {{}}


def test_with_module(resource):
{indent(flaky_lines(work, "module"))}
""",
    }


FLAKY = {
    "param": "test_param.py::test_param[b-1]",
    "plain": "test_unit.py::TestPlain::test_plain",
    "async": "test_unit.py::TestAsync::test_async",
    "class": "test_unit.py::TestClassSetUp::test_with_class",
    "module": "test_module.py::test_with_module",
}


@pytest.fixture(scope="module")
def hunted(tmp_path_factory):
    """One hunt of the suite: (exit code, tests by id, the report, where it ran, work)."""
    base = tmp_path_factory.mktemp("kinds")
    suite, work = base / "suite", base / "work"
    suite.mkdir()
    work.mkdir()
    (suite / "pytest.ini").write_text(SUITE_INI)
    for name, text in suite_files(work).items():
        (suite / name).write_text(text)
    out = base / "report.json"
    old = os.getcwd()
    os.chdir(base)  # the reproducers then say where to run: cd suite && ...
    try:
        with pytest.raises(SystemExit) as exc:
            main(["run", "suite", "--runs", "4", "--seed", "3", "--workers", "0",
                  "--profiles", "none", "--no-progress", "--json", str(out)])
    finally:
        os.chdir(old)
    report = json.loads(out.read_text())
    return exc.value.code, {t["nodeid"]: t for t in report["tests"]}, report, base, work


def test_every_follow_up_ran_its_test(hunted):
    code, tests, report, _, _ = hunted
    assert code == 1
    assert report["warnings"] == []
    assert tests["test_param.py::test_param[a]"]["verdict"] == "stable"


@pytest.mark.parametrize("kind", sorted(FLAKY))
def test_follow_ups_run_the_test(hunted, kind):
    _, tests, _, _, _ = hunted
    t = tests[FLAKY[kind]]
    assert t["verdict"] == "flaky", t
    alone = next(e for e in t["evidence"] if e.startswith("alone: "))
    bad, total = map(int, re.search(r"(\d+)/(\d+) repeats", alone).groups())
    assert total > 0 and bad == 1, alone  # repeated, and failed on its 2nd execution only
    assert not any(e.startswith("not counted") for e in t["evidence"]), t["evidence"]
    # the same test alone, a different outcome: nondeterministic, proven k/k
    assert t["category"] == "race", t["evidence"]
    assert "not verified" not in t["reproduce"], t["confidence"]


@pytest.mark.parametrize("kind", sorted(FLAKY))
def test_the_reproducer_runs_as_printed(hunted, kind):
    _, tests, _, base, work = hunted
    command = tests[FLAKY[kind]]["reproduce"]
    assert command.startswith("cd suite && ") and "--count" not in command, command
    count = int(re.search(r"--flakehunt-count=(\d+)", command).group(1))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for name in ("PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST", "PYTEST_XDIST_WORKER"):
        env.pop(name, None)
    setups = work / f"{kind}.setups"
    before = setups.read_text().count("\n") if setups.exists() else 0
    done = subprocess.run(command, shell=True, cwd=base, env=env, capture_output=True,
                          text=True, timeout=120)
    summary = done.stdout.strip().splitlines()[-1]
    assert done.returncode == 1, done.stdout + done.stderr
    assert re.search(rf"\b1 failed, {count - 1} passed\b", summary), summary
    if kind in ("class", "module"):  # set up once for all its repetitions
        assert setups.read_text().count("\n") == before + 1
