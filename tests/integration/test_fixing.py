"""A patch per root cause, verified in a scratch copy (`run --patch-dir`), and
`flakehunt fix` printing and applying it: one tiny deterministic leaking suite."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from click.testing import CliRunner
from helpers import run_main

from flakehunt.cli import cli

INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
SUITE = {
    "shared": "STATE = {}\n",
    # declared first: in the sweep's declared order it pollutes both victims
    "test_a_polluter": """
import shared


def test_polluter():
    shared.STATE["dirty"] = [1, 2, 3]
""",
    "test_b_victim": """
import shared


def test_victim():
    assert not shared.STATE, "left dirty by an earlier test"


def test_victim_too():
    assert "dirty" not in shared.STATE


def test_broken():
    assert 1 == 2
""",
}


def test_leak_patched_verified_and_applied(pytester, capsys, tmp_path):
    """Both victims fail through shared.STATE: one root cause, one patch (a new root
    conftest.py restoring the dict's contents in place), verified in a scratch copy
    (the original tree is untouched); `flakehunt fix` prints it and applies it, and
    the polluting order then passes."""
    pytester.makeini(INI)
    for name, text in SUITE.items():
        pytester.makepyfile(**{name: text})
    report, patches = pytester.path / "r.json", tmp_path / "patches"
    code, _, err = run_main(["run", "--runs", "1", "--seed", "3", "--workers", "0",
                             "--profiles", "none", "--no-progress", "--no-history",
                             "--json", str(report), "--patch-dir", str(patches)], capsys)
    assert code == 1, err
    data = json.loads(report.read_text())
    [cluster] = data["clusters"]
    assert sorted(t.split("::")[-1] for t in cluster["tests"]) == ["test_victim",
                                                                   "test_victim_too"]
    assert cluster["fix"]["status"] == "verified", cluster["fix"]["evidence"]
    name = cluster["fix"]["patch"]
    assert name.startswith("01-state-leak-") and (patches / name).is_file()
    assert "## 1. state-leak: shared.STATE" in (patches / "README.md").read_text()
    tests = {t["nodeid"].split("::")[-1]: t for t in data["tests"]}
    assert tests["test_victim"]["fix"] == {"patch": name, "status": "verified",
                                           "evidence": cluster["fix"]["evidence"]}
    assert tests["test_broken"]["fix"] is None
    assert not (pytester.path / "conftest.py").exists()  # verified in a copy

    runner = CliRunner()
    printed = runner.invoke(cli, ["fix", str(report)])
    assert printed.exit_code == 0 and printed.stdout == cluster["fix"]["diff"]
    copy = tmp_path / "copy"
    shutil.copytree(pytester.path, copy, ignore=shutil.ignore_patterns("*.json"))
    applied = runner.invoke(cli, ["fix", str(report), "--apply", "--root", str(copy)])
    assert applied.exit_code == 0, applied.output
    assert "copy.deepcopy(original)" in (copy / "conftest.py").read_text()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "test_a_polluter.py", "test_b_victim.py::test_victim",
                           "test_b_victim.py::test_victim_too"],
                          cwd=copy, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_fix_refuses_bad_input(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = run_main(["fix", str(bad)], capsys)
    assert code == 2 and err.count("\n") == 1 and "is not JSON" in err
