"""A suite on Python 3.9, with only pytest and pytest-xdist installed:
flakehunt loads its plugin from its own files (flakehunt.childpath)."""

from __future__ import annotations

import glob
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import counter_source, indent, run_main


def find_python39() -> str | None:
    """A python3.9 that runs (a pyenv shim may exist and refuse)."""
    pyenv = sorted(glob.glob(str(Path.home() / ".pyenv/versions/3.9*/bin/python3.9")))
    for candidate in [*pyenv, shutil.which("python3.9")]:
        if candidate and subprocess.run([candidate, "-c", "import venv"],
                                        capture_output=True, timeout=60).returncode == 0:
            return candidate
    return None


PYTHON39 = find_python39()


@pytest.fixture(scope="session")
def venv39(tmp_path_factory) -> str:
    """A fresh 3.9 venv with the two packages a suite needs (pip, from PyPI), once per
    test session."""
    if PYTHON39 is None:
        pytest.skip("python3.9 not found on this machine")
    where = tmp_path_factory.mktemp("venv39")
    subprocess.run([PYTHON39, "-m", "venv", str(where)], check=True, timeout=300)
    python = str(where / "bin" / "python")
    pip = subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                          "pytest", "pytest-xdist"],
                         capture_output=True, text=True, timeout=600)
    if pip.returncode != 0:
        pytest.skip(f"cannot install pytest into a 3.9 venv here: {pip.stderr[-300:]}")
    return python


def test_hunt_a_suite_on_python_39_without_flakehunt_installed(pytester, capsys, tmp_path,
                                                              venv39):
    counter = tmp_path / "counter"
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_suite=f"""
import pytest


@pytest.fixture
def data():
    return {{"a": 1}}


def test_stable(data):
    assert data["a"] == 1


def test_second_execution_fails():
{indent(counter_source(counter, (2,), 'raise AssertionError("second execution")'))}
""")
    report = tmp_path / "report.json"
    code, out, err = run_main(["run", "--python", venv39, "--runs", "3", "--min-rate", "0",
                               "--seed", "1", "--no-progress", "--profiles", "none",
                               "--workers", "0,2", "--no-history", "--json", str(report),
                               "--workdir", str(tmp_path / "work")],
                              capsys)
    assert code == 1, (out, err)
    data = json.loads(report.read_text())
    verdicts = {t["nodeid"].split("::")[1]: t["verdict"] for t in data["tests"]}
    assert verdicts == {"test_stable": "stable", "test_second_execution_fails": "flaky"}
    assert not data["warnings"], data["warnings"]
    assert data["runs"] and all(r["status"] == "ok" for r in data["runs"])
    session = (tmp_path / "work" / "run-0000" / "events-main.jsonl").read_text().splitlines()[0]
    assert json.loads(session)["python"].startswith("3.9."), session
    flaky = next(t for t in data["tests"] if t["verdict"] == "flaky")
    # the printed reproducer loads the plugin from the same files, and runs as printed
    assert flaky["reproduce"].startswith("PYTHONPATH="), flaky["reproduce"]
    replay = subprocess.run(flaky["reproduce"], shell=True, capture_output=True, text=True,
                            cwd=pytester.path, timeout=120)
    assert "passed" in replay.stdout or "failed" in replay.stdout, replay.stdout + replay.stderr
    assert "error" not in replay.stdout.splitlines()[-1], replay.stdout
