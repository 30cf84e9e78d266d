"""A patch per root cause, verified in a scratch copy (`run --patch-dir`), and
`flakehunt fix` printing and applying it: one tiny deterministic leaking suite."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from click.testing import CliRunner
from helpers import run_main

from flakehunt import clusters, patch
from flakehunt.cli import cli
from flakehunt.model import Category, Culprit, Finding, Verdict

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


RESET_SUITE = {
    "settings": """
import functools
import logging
import os

log = logging.getLogger("suite.audit")


@functools.lru_cache(maxsize=None)
def region():
    return os.environ.get("SUITE_REGION", "eu")
""",
    "test_a_polluters": """
import logging

import settings


def test_us(monkeypatch):
    monkeypatch.setenv("SUITE_REGION", "us")
    assert settings.region() == "us"


def test_quiet():
    logging.getLogger("suite.audit").setLevel(logging.ERROR)
    settings.log.warning("muted")
""",
    "test_b_victims": """
import settings


def test_default_region():
    assert settings.region() == "eu"


def test_audited(caplog):
    settings.log.warning("seen")
    assert "seen" in caplog.text
""",
}


def test_cache_and_logger_patches_make_the_polluted_order_pass(pytester):
    """The patches for an lru_cache and a named logger, as patch.make writes them,
    chained into one conftest.py: the victims fail after their polluters without
    them and pass with them."""
    for name, text in RESET_SUITE.items():
        pytester.makepyfile(**{name: text})
    args = ("-p", "no:cacheprovider", "-p", "no:randomly", "test_a_polluters.py",
            "test_b_victims.py")
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=2, failed=2)
    overlay: dict[str, str] = {}
    for test, culprit in (("test_default_region", Culprit("cache", "settings.region")),
                          ("test_audited", Culprit("logging", "suite.audit"))):
        found = Finding(f"test_b_victims.py::{test}", Verdict.FLAKY, 10, 5, 5, 0, 0,
                        category=Category.STATE_LEAK, culprit=culprit)
        [c] = clusters.group([found])
        made = patch.make(c, lambda rel: overlay.get(rel) or (
            (pytester.path / rel).read_text() if (pytester.path / rel).is_file() else None))
        assert isinstance(made, patch.Patch), made
        overlay[made.path] = made.new
    (pytester.path / "conftest.py").write_text(overlay["conftest.py"])
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=4)
