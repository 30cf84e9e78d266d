"""Child processes and the loop that runs them, so many CPUs at a time.

Every child is a ``python -m pytest`` (its command line and environment:
:mod:`flakehunt.command`) in its own process group, output to a file, killed as
a group: a fresh process (:class:`Process`) or one forked by a warm parent
(:mod:`flakehunt.pool`), both a :class:`Child`. :func:`execute` starts queued jobs
as slots free up, polls them and reports each one that ended; processes are behind
:class:`Launcher` so the loop (and the scheduler above it) can be tested with fakes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from flakehunt.model import RunStatus


class Handle(Protocol):
    """A started job: polled until it ends, killed at its timeout."""

    def poll(self) -> int | None: ...
    def kill(self) -> None: ...


class Slotted(Protocol):
    """A queued job: the CPUs it keeps busy while it runs (possibly a fraction), and
    the CPUs that must be free for it to start (``slots``, or fewer where a brief
    overlap at its start is harmless)."""

    @property
    def slots(self) -> float: ...

    @property
    def needs(self) -> float: ...


J = TypeVar("J", bound=Slotted)
J_contra = TypeVar("J_contra", bound=Slotted, contravariant=True)


class Launcher(Protocol[J_contra]):
    def start(self, job: J_contra) -> Handle: ...


class Attached(Protocol):
    """A parent-side perturbation applied to a running child (see profiles.Attached)."""

    def stop(self) -> dict[str, Any]: ...


class Child:
    """A run's process in its own process group, killed as a group. A profile's
    parent-side perturbation (``attach``) is stopped before the group is signalled - a
    group left SIGSTOPped would never die - and whatever the run left in its group
    (burners, stray workers) is killed when it ends. Subclasses say how the process is
    started and how its exit is learnt (:class:`Process`; a forked one: flakehunt.pool)."""

    def __init__(self, attach: Callable[[int], Attached | None] | None = None,
                 attach_when: Path | None = None, released: Path | None = None) -> None:
        """``attach`` is applied once the process exists, or once ``attach_when`` exists
        (the plugin writes it when the run's first test starts); ``released`` is created
        once it was applied (the plugin holds the first test until then)."""
        self.released = released
        for stale in (attach_when, released):  # a reused folder's markers
            if stale is not None:
                stale.unlink(missing_ok=True)
        self.attached: Attached | None = None
        self.applied: dict[str, Any] = {}
        self.pending = attach  # not applied yet
        self.attach_when = attach_when
        self.started = time.monotonic()
        self.after: float | None = None  # seconds after the start ``attach`` applied
        #: how the run's process started (flakehunt.pool); empty: a plain fresh process
        self.start: dict[str, Any] = {}

    @property
    def pid(self) -> int | None:
        """The process (and its group); None while it has not started yet."""
        raise NotImplementedError

    def exited(self) -> int | None:
        """Its exit code once it ended (-N: killed by signal N), else None."""
        raise NotImplementedError

    def wait_exit(self, timeout: float | None) -> None:
        """Wait at most ``timeout`` seconds (None: for good) for it to end."""
        raise NotImplementedError

    def apply(self) -> None:
        pid = self.pid
        if pid is None or self.pending is None or (self.attach_when is not None
                                                   and not self.attach_when.exists()):
            return
        attach, self.pending = self.pending, None
        self.after = time.monotonic() - self.started
        try:
            self.attached = attach(pid)
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
        rc = self.exited()
        if rc is None:
            self.apply()
        else:
            self.detach()
            self.signal(signal.SIGKILL)  # leftovers of a finished run
        return rc

    def signal(self, sig: int) -> None:
        if self.pid is not None:
            signal_group(self.pid, sig)

    def terminate(self) -> None:
        """Resume (detach any throttle) and SIGTERM the whole group."""
        self.detach()
        self.signal(signal.SIGTERM)

    def kill(self, grace: float = 1.0) -> None:
        """SIGTERM the group, SIGKILL what is left after ``grace`` seconds."""
        self.terminate()
        self.wait_exit(grace)
        self.signal(signal.SIGKILL)
        self.wait_exit(None)


class Process(Child):
    """A fresh child process (``argv``), output to ``log``."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, log: Path,
                 attach: Callable[[int], Attached | None] | None = None,
                 attach_when: Path | None = None, released: Path | None = None) -> None:
        super().__init__(attach, attach_when, released)
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        self.apply()

    @property
    def pid(self) -> int | None:
        return self.proc.pid

    def exited(self) -> int | None:
        return self.proc.poll()

    def wait_exit(self, timeout: float | None) -> None:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass


def stop_all(handles: list[Handle], grace: float = 1.0) -> None:
    """SIGTERM every group at once, then SIGKILL what is left after ``grace``."""
    for h in handles:
        if isinstance(h, Child):
            h.terminate()
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(h.poll() is None for h in handles):
        time.sleep(0.02)
    for h in handles:
        if isinstance(h, Child):
            h.kill(grace=0)
        else:
            h.kill()


def signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class Done(Generic[J]):
    """A job that ended: how, and after how many seconds."""

    job: J
    exit_code: int | None
    status: RunStatus  # OK | TIMEOUT | INTERRUPTED
    duration: float


#: a running job: (job, its handle, when it started)
Running = list[tuple[J, Handle, float]]


#: CPUs the jobs may keep busy: a number, or a function of the running jobs
Capacity = float | Callable[[list[J]], float]


def execute(jobs: deque[J], slots: Capacity[J], launcher: Launcher[J],
            on_done: Callable[[Done[J]], None], timeout: float | None = None,
            clock: Callable[[], float] = time.monotonic,
            sleep: Callable[[float], None] = time.sleep,
            should_stop: Callable[[], bool] = lambda: False,
            max_running: int | None | Callable[[], int | None] = None) -> bool:
    """Run ``jobs`` (each with ``.slots``, the CPUs it keeps busy, possibly a
    fraction), at most ``slots`` busy at once and at most ``max_running`` jobs.
    ``slots`` may be a function of the running jobs, asked each time jobs may start.

    ``on_done`` may append more jobs. A job bigger than ``slots`` runs alone. Jobs start
    in queue order, except that a job which does not fit yet lets later ones that do
    go first (backfilling).
    ``max_running`` may be a function, asked each time jobs may start.
    Returns False when ``should_stop`` ended the work early; on any exception
    (KeyboardInterrupt included) every running child is killed first.
    """
    running: Running[J] = []
    try:
        while jobs or running:
            if should_stop():
                interrupt(running, on_done, clock)
                return False
            start_fitting(jobs, running, slots, max_running, launcher, clock)
            reap(running, on_done, timeout, clock)
            if running:
                sleep(0.02)
        return True
    except BaseException:
        # interrupted (Ctrl-C, SIGTERM) or broken: stop every child, keep what each
        # already measured, then let the exception go on
        interrupt(running, on_done, clock, quiet=True)
        raise
    finally:
        for _, handle, _ in running:
            handle.kill()


def start_fitting(jobs: deque[J], running: Running[J], slots: Capacity[J],
                  max_running: int | None | Callable[[], int | None],
                  launcher: Launcher[J], clock: Callable[[], float]) -> None:
    """Start queued jobs while they fit (``needs`` free beside the running jobs'
    ``slots``): the first queued job that fits goes, so a wide job waits for the CPUs
    it needs while narrower ones behind it use what is free."""
    if callable(max_running):
        max_running = max_running()
    if callable(slots):
        slots = slots([j for j, _, _ in running])
    busy = sum(j.slots for j, _, _ in running)
    while jobs and (max_running is None or len(running) < max_running):
        pick = 0 if not running else next(
            (i for i, j in enumerate(jobs) if busy + j.needs <= slots + 1e-9), None)
        if pick is None:
            break
        job = jobs[pick]
        del jobs[pick]
        running.append((job, launcher.start(job), clock()))
        busy += job.slots


def reap(running: Running[J], on_done: Callable[[Done[J]], None], timeout: float | None,
         clock: Callable[[], float]) -> None:
    """Report every job that ended, killing those past ``timeout`` first."""
    for entry in list(running):
        job, handle, started = entry
        rc = handle.poll()
        elapsed = clock() - started
        if rc is None and timeout is not None and elapsed > timeout:
            handle.kill()
            rc, status = handle.poll(), RunStatus.TIMEOUT
        elif rc is None:
            continue
        else:
            status = RunStatus.OK
        # out of ``running`` first: if on_done raises, the caller's handler must
        # not report this run a second time
        running.remove(entry)
        on_done(Done(job, rc, status, elapsed))


def interrupt(running: Running[J], on_done: Callable[[Done[J]], None],
              clock: Callable[[], float], quiet: bool = False) -> None:
    """Stop every running job and report each as interrupted; ``quiet``: an error while
    reporting is dropped (it must not mask the exception that stopped the work)."""
    stop_all([handle for _, handle, _ in running])
    for job, _handle, started in running:
        try:
            on_done(Done(job, None, RunStatus.INTERRUPTED, clock() - started))
        except Exception:  # noqa: BLE001 - recording must not mask the interrupt
            if not quiet:
                raise
    running.clear()
