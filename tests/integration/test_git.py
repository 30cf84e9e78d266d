"""The one git wrapper, and what its two callers make of a failure."""

from __future__ import annotations

import subprocess

import pytest

from flakehunt import changed, history
from flakehunt.errors import UsageError
from flakehunt.git import GitError, GitNotFound, git


@pytest.fixture
def repo(tmp_path):
    for args in (["init", "-q", "-b", "main"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty",
                  "-m", "first"]):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True)
    return tmp_path


def test_answers_and_failures(repo, tmp_path_factory):
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main\n"
    assert git(repo, "status", "--porcelain") == ""
    outside = tmp_path_factory.mktemp("not-a-repo")
    with pytest.raises(GitError, match="not a git repository") as exc:
        git(outside, "rev-parse", "HEAD")
    assert "\n" not in str(exc.value)  # the last line of git's stderr only


def test_history_shrugs_and_changed_explains(repo, tmp_path_factory):
    outside = tmp_path_factory.mktemp("not-a-repo")
    assert history.git(str(outside), "rev-parse", "HEAD") is None
    assert history.git(str(repo), "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert history.git(str(repo), "rev-parse", "no-such-ref") is None
    with pytest.raises(UsageError, match=r"^--changed: git rev-parse HEAD failed: fatal: "):
        changed.git(outside, "rev-parse", "HEAD")


def test_no_git_at_all(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(GitNotFound):
        git(tmp_path, "status")
    assert history.git(str(tmp_path), "rev-parse", "HEAD") is None
    with pytest.raises(UsageError, match="^--changed needs git$"):
        changed.git(tmp_path, "status")


def test_no_answer_in_time(monkeypatch, tmp_path):
    def hang(argv, **kw):
        raise subprocess.TimeoutExpired(argv, kw["timeout"])

    monkeypatch.setattr(subprocess, "run", hang)
    with pytest.raises(GitError, match="no answer in 10s"):
        git(tmp_path, "status", timeout=10)
    assert history.git(str(tmp_path), "rev-parse", "HEAD") is None
    with pytest.raises(UsageError, match="git status failed: no answer in 60s"):
        changed.git(tmp_path, "status")
