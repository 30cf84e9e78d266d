"""``--changed``: hunt only what the branch touched.

The tests in files changed since the merge base with ``--base`` (committed,
staged, unstaged or untracked), plus every test that uses a fixture defined
in a changed file (a conftest.py, or a plugin module), directly or through
another fixture. Which fixtures a test uses is asked of the suite's own
pytest: one ``--collect-only`` with this module loaded as a plugin
(``-p flakehunt.changed``), which writes each test's file and the files its
fixtures come from.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from flakehunt.command import clean_env, collect_argv
from flakehunt.errors import SuiteError, UsageError
from flakehunt.git import GitError, GitNotFound
from flakehunt.git import git as run_git

OUT_ENV = "FLAKEHUNT_FIXTURES_OUT"


# -- the plugin side (runs inside the suite's pytest) --------------------------------------
def pytest_collection_finish(session) -> None:
    out = os.environ.get(OUT_ENV)
    if not out:
        return
    tests = {}
    for item in session.items:
        files = set()
        info = getattr(item, "_fixtureinfo", None)
        for defs in (info.name2fixturedefs.values() if info else ()):
            for d in defs:
                try:
                    files.add(str(Path(inspect.getsourcefile(d.func) or "").resolve()))
                except TypeError:
                    continue
        tests[item.nodeid] = {"file": str(Path(str(item.path)).resolve()),
                              "fixtures": sorted(files)}
    Path(out).write_text(json.dumps(tests), encoding="utf-8")


# -- the hunt side ------------------------------------------------------------------------
def git(cwd: Path, *args: str) -> str:
    """git's answer, or a UsageError: --changed cannot work without it."""
    try:
        return run_git(cwd, *args, timeout=60)
    except GitNotFound:
        raise UsageError("--changed needs git") from None
    except GitError as exc:
        raise UsageError(f"--changed: git {' '.join(args)} failed: {exc}") from None


def default_base(cwd: Path, env: Mapping[str, str] | None = None) -> str:
    """The pull request's target on GitHub Actions, else origin's default branch, else main."""
    target = (os.environ if env is None else env).get("GITHUB_BASE_REF")
    if target:
        return f"origin/{target}"
    try:
        return git(cwd, "symbolic-ref", "--short", "refs/remotes/origin/HEAD").strip()
    except UsageError:
        pass
    for name in ("main", "master"):
        try:
            git(cwd, "rev-parse", "--verify", "--quiet", name)
            return name
        except UsageError:
            continue
    raise UsageError("--changed: cannot tell the base branch; give --base REF")


def changed_files(cwd: Path, base: str) -> set[Path]:
    """Absolute paths changed since the merge base of ``base`` and HEAD, and untracked ones."""
    top = Path(git(cwd, "rev-parse", "--show-toplevel").strip())
    try:
        merge_base = git(cwd, "merge-base", base, "HEAD").strip()
    except UsageError as exc:
        raise UsageError(f"{exc} (is {base!r} fetched? a shallow CI checkout needs "
                         "fetch-depth: 0)") from None
    names = git(cwd, "diff", "--name-only", "-z", merge_base, "--").split("\0")
    names += git(cwd, "ls-files", "--others", "--exclude-standard", "-z").split("\0")
    return {(top / n).resolve() for n in names if n}


def fixture_map(python: str, selection: tuple[str, ...], pytest_args: tuple[str, ...],
                cwd: Path, outdir: Path) -> dict[str, dict]:
    """nodeid -> {"file": test file, "fixtures": files its fixtures are defined in}."""
    outdir.mkdir(parents=True, exist_ok=True)
    out = outdir / "fixtures.json"
    env = {**clean_env(), OUT_ENV: str(out)}
    argv = collect_argv(python, selection, pytest_args, plugin="flakehunt.changed")
    try:
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                              check=False, timeout=600, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise SuiteError(f"interpreter not found: {python}") from None
    if not out.exists():
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-12:])
        raise SuiteError(f"pytest could not collect the suite (exit {proc.returncode}):\n{tail}")
    return json.loads(out.read_text(encoding="utf-8"))


def select(tests: dict[str, dict], changed: set[Path]) -> list[str]:
    """Test files as ``path::rest`` ids (absolute paths) of the tests touched by ``changed``."""
    names = {str(p) for p in changed}
    out = []
    for nodeid, facts in tests.items():
        if facts["file"] in names or names.intersection(facts["fixtures"]):
            _, sep, rest = nodeid.partition("::")
            out.append(facts["file"] + sep + rest)
    return out
