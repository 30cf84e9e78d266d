"""One child pytest run: its command line, its environment, its process.

Every child is a fresh ``python -m pytest`` in its own process group, output
to files, with its own ``--basetemp``. ``replay_args`` is the part of the
command a user needs to replay a run; the rest is plumbing into the run's
folder. Processes are behind :class:`Launcher` so the scheduler can be tested
with fakes.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from flakehunt.model import RunSpec

#: variables that would change what a child run does behind our back
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


def replay_args(suite: Suite, spec: RunSpec, profile_args: tuple[str, ...] = ()) -> list[str]:
    """The pytest arguments that make a run what it is (order, seeds, workers...)."""
    args = list(spec.tests if spec.tests is not None else suite.selection)
    args += list(suite.pytest_args)
    args += ["-p", "flakehunt", "-p", "no:randomly", "-p", "no:cacheprovider"]
    if spec.order != "declared":
        args.append(f"--flakehunt-order={spec.order}")
    args.append(f"--flakehunt-random-seed={spec.random_seed}")
    args.append(f"--numprocesses={spec.workers}")
    if spec.workers:
        args.append(f"--dist={spec.dist}")
    if spec.count > 1:
        args += [f"--count={spec.count}", "--repeat-scope=function"]
    if spec.split and spec.workers:
        args.append(f"--flakehunt-split={spec.split}")
    args += list(profile_args)
    return args


def child_argv(suite: Suite, spec: RunSpec, rundir: Path,
               profile_args: tuple[str, ...] = (), await_profile: bool = False) -> list[str]:
    """``await_profile``: the first test waits until flakehunt applied a deferred profile
    (plumbing, like the output options: not part of the replay command)."""
    return [suite.python, "-m", "pytest", *replay_args(suite, spec, profile_args),
            f"--flakehunt-out={rundir}", f"--junitxml={rundir / 'junit.xml'}",
            "-o", "junit_family=xunit2", f"--basetemp={rundir / 'tmp'}",
            f"--flakehunt-evidence={'on' if suite.evidence else 'off'}",
            *(["--flakehunt-await"] if await_profile else [])]


def hash_seed(spec: RunSpec) -> str:
    return str(spec.random_seed % 4294967296)


def child_env(spec: RunSpec, base: dict[str, str] | None = None,
              tmpdir: Path | None = None) -> dict[str, str]:
    """``tmpdir``: the run's own TMPDIR, so that tests writing to a fixed name in the
    temporary directory collide only with the run's own xdist workers, never with
    the runs flakehunt has going beside it."""
    env = {k: v for k, v in (os.environ if base is None else base).items()
           if k not in DROPPED_ENV}
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    env["PYTHONHASHSEED"] = hash_seed(spec)
    env["PYTHONFAULTHANDLER"] = "1"  # a segfault prints the running test's stack
    env["PY_COLORS"] = "0"
    return env


def replay_command(suite: Suite, spec: RunSpec, profile_args: tuple[str, ...] = (),
                   cwd: Path | None = None, wrapper: tuple[str, ...] = ()) -> str:
    """A shell command a user can paste to replay ``spec``; ``wrapper`` applies a
    parent-side profile (e.g. ``python -m flakehunt.throttle --share=0.25 --``)."""
    python = "python" if suite.python == sys.executable else suite.python
    cmd = f"PYTHONHASHSEED={hash_seed(spec)} " + shlex.join(
        [*wrapper, python, "-m", "pytest", *replay_args(suite, spec, profile_args)])
    if cwd is None or Path(cwd).resolve() != suite.rootdir.resolve():
        where = suite.rootdir.resolve()
        if cwd is not None and where.is_relative_to(Path(cwd).resolve()):
            where = where.relative_to(Path(cwd).resolve())  # below cwd: say it short
        cmd = f"cd {shlex.quote(str(where))} && {cmd}"
    return cmd


class Handle(Protocol):
    def poll(self) -> int | None: ...
    def kill(self) -> None: ...


class Launcher(Protocol):
    def start(self, job) -> Handle: ...


class Process:
    """A child in its own process group, killed as a group. A profile's parent-side
    perturbation (``attach``) is stopped before the group is signalled - a group
    left SIGSTOPped would never die - and whatever the run left in its group
    (burners, stray workers) is killed when it ends."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, log: Path,
                 attach: Callable[[int], object] | None = None,
                 attach_when: Path | None = None, released: Path | None = None) -> None:
        """``attach`` is applied at once, or once ``attach_when`` exists (the plugin
        writes it when the run's first test starts); ``released`` is created once it
        was applied (the plugin holds the first test until then)."""
        self.released = released
        for stale in (attach_when, released):  # a reused folder's markers
            if stale is not None:
                stale.unlink(missing_ok=True)
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        self.attached = None
        self.applied: dict = {}
        self.pending = attach  # not applied yet
        self.attach_when = attach_when
        self.started = time.monotonic()
        self.after: float | None = None  # seconds after the start ``attach`` applied
        self.apply()

    def apply(self) -> None:
        if self.pending is None or (self.attach_when is not None
                                    and not self.attach_when.exists()):
            return
        attach, self.pending = self.pending, None
        self.after = time.monotonic() - self.started
        try:
            self.attached = attach(self.proc.pid)
        except Exception as exc:  # noqa: BLE001 - a profile that failed is reported
            self.applied = {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            if self.released is not None:  # the first test goes on, applied or not
                try:
                    self.released.touch()
                except OSError:
                    pass

    @property
    def waiting(self) -> bool:
        """A deferred ``attach`` not applied yet."""
        return self.pending is not None

    def detach(self) -> None:
        self.pending = None  # ended (or being stopped) before its tests started
        if self.attached is not None:
            attached, self.attached = self.attached, None
            self.applied = attached.stop()
            if self.attach_when is not None and self.after is not None:
                self.applied = {**self.applied, "applied_after_s": round(self.after, 3)}

    def poll(self) -> int | None:
        rc = self.proc.poll()
        if rc is None:
            self.apply()
        else:
            self.detach()
            signal_group(self.proc.pid, signal.SIGKILL)  # leftovers of a finished run
        return rc

    def terminate(self) -> None:
        """Resume (detach any throttle) and SIGTERM the whole group."""
        self.detach()
        signal_group(self.proc.pid, signal.SIGTERM)

    def kill(self, grace: float = 1.0) -> None:
        """SIGTERM the group, SIGKILL what is left after ``grace`` seconds."""
        self.terminate()
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        signal_group(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def stop_all(handles: list, grace: float = 1.0) -> None:
    """SIGTERM every group at once, then SIGKILL what is left after ``grace``."""
    for h in handles:
        if hasattr(h, "terminate"):
            h.terminate()
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(h.poll() is None for h in handles):
        time.sleep(0.02)
    for h in handles:
        h.kill(grace=0) if hasattr(h, "terminate") else h.kill()


def signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class Done:
    job: object
    exit_code: int | None
    status: str  # ok | timeout | interrupted
    duration: float


def execute(jobs: deque, slots: float, launcher: Launcher, on_done: Callable[[Done], None],
            timeout: float | None = None, clock: Callable[[], float] = time.monotonic,
            sleep: Callable[[float], None] = time.sleep,
            should_stop: Callable[[], bool] = lambda: False,
            max_running: int | None = None) -> bool:
    """Run ``jobs`` (each with ``.slots``, the CPUs it keeps busy, possibly a
    fraction), at most ``slots`` busy at once and at most ``max_running`` jobs.

    ``on_done`` may append more jobs. A job bigger than ``slots`` runs alone. Jobs start
    in queue order, except that a job which does not fit yet lets later ones that do
    go first (backfilling).
    Returns False when ``should_stop`` ended the work early; on any exception
    (KeyboardInterrupt included) every running child is killed first.
    """
    running: list[tuple[object, Handle, float]] = []
    try:
        while jobs or running:
            if should_stop():
                stop_all([handle for _, handle, _ in running])
                for job, _handle, started in running:
                    on_done(Done(job, None, "interrupted", clock() - started))
                running.clear()
                return False
            busy = sum(j.slots for j, _, _ in running)
            while jobs and (max_running is None or len(running) < max_running):
                # the first queued job that fits: a wide job waits for the CPUs it needs
                # while narrower ones behind it use what is free
                pick = 0 if not running else next(
                    (i for i, j in enumerate(jobs) if busy + j.slots <= slots + 1e-9), None)
                if pick is None:
                    break
                job = jobs[pick]
                del jobs[pick]
                running.append((job, launcher.start(job), clock()))
                busy += job.slots
            for entry in list(running):
                job, handle, started = entry
                rc = handle.poll()
                elapsed = clock() - started
                if rc is None and timeout is not None and elapsed > timeout:
                    handle.kill()
                    rc, status = handle.poll(), "timeout"
                elif rc is None:
                    continue
                else:
                    status = "ok"
                # out of ``running`` first: if on_done raises, the handler below must
                # not report this run a second time
                running.remove(entry)
                on_done(Done(job, rc, status, elapsed))
            if running:
                sleep(0.02)
        return True
    except BaseException:
        # interrupted (Ctrl-C, SIGTERM) or broken: stop every child, keep what each
        # already measured, then let the exception go on
        stop_all([handle for _, handle, _ in running])
        for job, _handle, started in running:
            try:
                on_done(Done(job, None, "interrupted", clock() - started))
            except Exception:  # noqa: BLE001 - recording must not mask the interrupt
                pass
        running.clear()
        raise
    finally:
        for _, handle, _ in running:
            handle.kill()
