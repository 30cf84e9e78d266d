"""The one way flakehunt asks git something: ``git -C DIR ARGS``, its output or a GitError.

Callers decide what a failure means: ``--changed`` cannot work without git and
says why; history records a hunt without a commit when there is none.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


class GitError(Exception):
    """git failed (its last line of stderr), timed out, or could not be started."""


class GitNotFound(GitError):
    """There is no git to run."""


def git(where: str | Path, *args: str, timeout: float = 60.0) -> str:
    """The standard output of ``git ARGS`` run in ``where``."""
    try:
        out = subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True,
                             check=False, timeout=timeout, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise GitNotFound("git not found") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"no answer in {timeout:g}s") from None
    except (OSError, subprocess.SubprocessError) as exc:
        raise GitError(str(exc)) from None
    if out.returncode != 0:
        lines = out.stderr.strip().splitlines()
        raise GitError(lines[-1] if lines else "")
    return out.stdout
