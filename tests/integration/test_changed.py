"""--changed: tests in changed files, and tests using fixtures from changed conftest files."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import SUITE_INI, run_main

from flakehunt import changed
from flakehunt.errors import UsageError


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture
def repo(tmp_path) -> Path:
    """main: a suite; the test then changes things on a branch."""
    repo = tmp_path / "repo"
    (repo / "tests" / "api").mkdir(parents=True)
    (repo / "pytest.ini").write_text(SUITE_INI)
    (repo / "tests" / "conftest.py").write_text(textwrap.dedent("""\
        import pytest

        @pytest.fixture
        def db():
            return {}
        """))
    (repo / "tests" / "api" / "conftest.py").write_text(textwrap.dedent("""\
        import pytest

        @pytest.fixture
        def client(db):
            return db
        """))
    (repo / "tests" / "test_plain.py").write_text("def test_one():\n    pass\n\n"
                                                  "def test_two():\n    pass\n")
    (repo / "tests" / "api" / "test_api.py").write_text(
        "def test_client(client):\n    pass\n\ndef test_no_fixture():\n    pass\n")
    (repo / "tests" / "test_db.py").write_text("def test_db(db):\n    pass\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "suite")
    git(repo, "checkout", "-q", "-b", "feature")
    return repo


def ids(selected: list[str], repo: Path) -> set[str]:
    return {s.replace(str(repo.resolve()) + "/", "") for s in selected}


def test_select_follows_test_files_and_fixture_files(repo):
    tests = changed.fixture_map(sys.executable, (), (), repo, repo.parent / "out")
    assert set(tests) == {"tests/test_plain.py::test_one", "tests/test_plain.py::test_two",
                          "tests/api/test_api.py::test_client",
                          "tests/api/test_api.py::test_no_fixture", "tests/test_db.py::test_db"}
    root_conftest = (repo / "tests" / "conftest.py").resolve()
    # test_client uses db through client: the root conftest counts for it too
    assert str(root_conftest) in tests["tests/api/test_api.py::test_client"]["fixtures"]
    assert ids(changed.select(tests, {root_conftest}), repo) == {
        "tests/api/test_api.py::test_client", "tests/test_db.py::test_db"}
    api_conftest = (repo / "tests" / "api" / "conftest.py").resolve()
    assert ids(changed.select(tests, {api_conftest}), repo) == {
        "tests/api/test_api.py::test_client"}
    plain = (repo / "tests" / "test_plain.py").resolve()
    assert ids(changed.select(tests, {plain}), repo) == {
        "tests/test_plain.py::test_one", "tests/test_plain.py::test_two"}
    assert changed.select(tests, {(repo / "README.md").resolve()}) == []


def test_changed_files_since_the_merge_base(repo):
    assert changed.changed_files(repo, "main") == set()
    (repo / "tests" / "conftest.py").write_text("import pytest\n\n@pytest.fixture\n"
                                                "def db():\n    return {'x': 1}\n")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "db")
    (repo / "tests" / "test_new.py").write_text("def test_new():\n    pass\n")  # untracked
    (repo / "tests" / "test_plain.py").write_text("def test_one():\n    pass\n")  # unstaged
    assert changed.changed_files(repo, "main") == {
        (repo / p).resolve() for p in ("tests/conftest.py", "tests/test_new.py",
                                       "tests/test_plain.py")}
    assert changed.default_base(repo, {}) == "main"
    assert changed.default_base(repo, {"GITHUB_BASE_REF": "dev"}) == "origin/dev"
    with pytest.raises(UsageError, match="fetch-depth"):
        changed.changed_files(repo, "no-such-branch")


def test_run_changed_hunts_only_the_touched_tests(repo, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(repo)
    args = ["run", "--changed", "--base", "main", "--runs", "2", "--workers", "0",
            "--profiles", "none", "--no-classify", "--no-progress", "--no-history"]
    code, _, err = run_main(args, capsys)
    assert code == 0 and "nothing to hunt" in err
    (repo / "tests" / "api" / "conftest.py").write_text(
        "import pytest\n\n@pytest.fixture\ndef client(db):\n    return dict(db)\n")
    report = tmp_path / "r.json"
    code, _, err = run_main([*args, "--json", str(report)], capsys)
    assert code == 0, err
    assert [t["nodeid"] for t in json.loads(report.read_text())["tests"]] == [
        "tests/api/test_api.py::test_client"]
    code, _, err = run_main(["run", "--base", "main"], capsys)
    assert code == 2 and "--base goes with --changed" in err
