"""The child pytest command line and its environment: one place for both.

Every pytest flakehunt starts - the collection, a run of the hunt, the
``--changed`` fixture map - is ``python -m pytest`` with the user's selection
and arguments, flakehunt's plugin, and the same plugins turned off; and every
one gets its environment from :func:`clean_env`, the one rule for what the
caller's environment may not pass on (:data:`DROPPED_ENV`).

``replay_args`` is the part of a run's command a user needs to replay it;
:func:`child_argv` adds the plumbing into the run's folder.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from flakehunt import childpath
from flakehunt.model import RunSpec
from flakehunt.wire import (
    OPT_AWAIT,
    OPT_COUNT,
    OPT_EVIDENCE,
    OPT_ORDER,
    OPT_OUT,
    OPT_RANDOM_SEED,
    OPT_RESET,
    OPT_SPLIT,
)

#: variables that would change what a child pytest does behind our back
DROPPED_ENV = ("PYTEST_ADDOPTS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTEST_CURRENT_TEST",
               "PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID")


@dataclass(frozen=True)
class Suite:
    """What the user asked to hunt, as the children see it."""

    python: str
    rootdir: Path
    selection: tuple[str, ...]  # paths / ids relative to rootdir
    pytest_args: tuple[str, ...] = ()
    evidence: bool = True  # the plugin's fixture/loop/state probes
    #: the folder of flakehunt's child-side modules (:mod:`flakehunt.childpath`), first on
    #: every child's PYTHONPATH; None: the suite's interpreter has flakehunt installed
    child_path: Path | None = None


# -- the command line -----------------------------------------------------------------------
def pytest_argv(python: str) -> list[str]:
    return [python, "-m", "pytest"]


def plugins(plugin: str = "flakehunt") -> list[str]:
    """``plugin`` in, the plugins that would reorder tests or reuse results out."""
    return ["-p", plugin, "-p", "no:randomly", "-p", "no:cacheprovider"]


def collect_argv(python: str, selection: tuple[str, ...], pytest_args: tuple[str, ...],
                 plugin: str = "flakehunt") -> list[str]:
    """``--collect-only`` of the user's selection, with ``plugin`` loaded."""
    return [*pytest_argv(python), "--collect-only", "-q", *selection, *pytest_args,
            *plugins(plugin)]


def replay_args(suite: Suite, spec: RunSpec, profile_args: tuple[str, ...] = ()) -> list[str]:
    """The pytest arguments that make a run what it is (order, seeds, workers...)."""
    args = list(spec.tests if spec.tests is not None else suite.selection)
    args += list(suite.pytest_args)
    args += plugins()
    if spec.order != "declared":
        args.append(f"{OPT_ORDER}={spec.order}")
    args.append(f"{OPT_RANDOM_SEED}={spec.random_seed}")
    args.append(f"--numprocesses={spec.workers}")
    if spec.workers:
        args.append(f"--dist={spec.dist}")
    if spec.count > 1:  # the plugin's own repetition keeps the test's id (flakehunt.repeat)
        args.append(f"{OPT_COUNT}={spec.count}")
    if spec.split and spec.workers:
        args.append(f"{OPT_SPLIT}={spec.split}")
    if spec.reset:
        args.append(f"{OPT_RESET}={spec.reset}")
    args += list(profile_args)
    return args


def child_argv(suite: Suite, spec: RunSpec, rundir: Path,
               profile_args: tuple[str, ...] = (), await_profile: bool = False) -> list[str]:
    """``await_profile``: the first test waits until flakehunt applied a deferred profile
    (plumbing, like the output options: not part of the replay command)."""
    return [*pytest_argv(suite.python), *replay_args(suite, spec, profile_args),
            f"{OPT_OUT}={rundir}", f"--junitxml={rundir / 'junit.xml'}",
            "-o", "junit_family=xunit2", f"--basetemp={rundir / 'tmp'}",
            f"{OPT_EVIDENCE}={'on' if suite.evidence else 'off'}",
            *([OPT_AWAIT] if await_profile else [])]


def replay_command(suite: Suite, spec: RunSpec, profile_args: tuple[str, ...] = (),
                   cwd: Path | None = None, wrapper: tuple[str, ...] = ()) -> str:
    """A shell command a user can paste to replay ``spec``; ``wrapper`` applies a
    parent-side profile (e.g. ``python -m flakehunt.throttle --share=0.25 --``)."""
    python = "python" if suite.python == sys.executable else suite.python
    cmd = childpath.replay_prefix(suite.python, suite.child_path)
    cmd += f"PYTHONHASHSEED={hash_seed(spec)} " + shlex.join(
        [*wrapper, *pytest_argv(python), *replay_args(suite, spec, profile_args)])
    if cwd is None or Path(cwd).resolve() != suite.rootdir.resolve():
        where = suite.rootdir.resolve()
        if cwd is not None and where.is_relative_to(Path(cwd).resolve()):
            where = where.relative_to(Path(cwd).resolve())  # below cwd: say it short
        cmd = f"cd {shlex.quote(str(where))} && {cmd}"
    return cmd


# -- the environment ------------------------------------------------------------------------
def clean_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) without :data:`DROPPED_ENV`: the one
    rule every child pytest's environment starts from."""
    return {k: v for k, v in (os.environ if base is None else base).items()
            if k not in DROPPED_ENV}


def hash_seed(spec: RunSpec) -> str:
    seed = spec.random_seed if spec.hash_seed is None else spec.hash_seed
    return str(seed % 4294967296)


def child_env(spec: RunSpec, base: Mapping[str, str] | None = None,
              tmpdir: Path | None = None, child_path: Path | None = None) -> dict[str, str]:
    """``tmpdir``: the run's own TMPDIR, so that tests writing to a fixed name in the
    temporary directory collide only with the run's own xdist workers, never with
    the runs flakehunt has going beside it; ``child_path``: put first on PYTHONPATH, so
    the plugin loads from flakehunt's own files (:mod:`flakehunt.childpath`), and the
    children share a bytecode cache beside it (unless the caller has its own
    ``PYTHONPYCACHEPREFIX``): no run compiles the suite's modules again, whatever
    ``PYTHONDONTWRITEBYTECODE`` says, and none writes ``__pycache__`` into the tree."""
    env = clean_env(base)
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    if child_path is not None:
        env["PYTHONPATH"] = childpath.pythonpath(child_path, env.get("PYTHONPATH"))
        if "PYTHONPYCACHEPREFIX" not in env:  # compiled once for every run, not per run
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(childpath.pycache(child_path))
    env["PYTHONHASHSEED"] = hash_seed(spec)
    env["PYTHONFAULTHANDLER"] = "1"  # a segfault prints the running test's stack
    env["PY_COLORS"] = "0"
    return env


def collect_env(child_path: Path | None = None) -> dict[str, str]:
    """The collecting child's environment: a run's, with the hash seed of random seed 0."""
    return child_env(RunSpec(index=-1), child_path=child_path)
