"""Warm starts: a small pool of warm parents that fork one child per run.

A run's process spends most of a small suite's run starting the interpreter and
importing pytest, its plugins and the suite's dependencies. A warm parent
(:mod:`flakehunt.warm`, on the suite's own interpreter, in the suite's rootdir) has done
that once; each run is a child it forks, in its own session, which then runs
``python -m pytest ARGS`` as a fresh process would. The suite's own modules are never
imported by a parent: each run imports them itself, from fresh state.

``PYTHONHASHSEED`` is fixed when an interpreter starts, so every parent has its own
(derived from the hunt's seed) and serves at most ``lifetime`` sweep runs before a new
parent, with a new hash seed, takes over: the sweep still meets many hash seeds, and each
run records the one it had (``RunSpec.hash_seed``; replays and reproducers use it).
Follow-up runs (screen, alone, bisection...) ask about order and timing, never about the
hash seed, so they do not age a parent: a parent costs about two sweep runs to start,
and the follow-ups would otherwise start one for every ``lifetime`` of them.
A run the pool cannot serve starts fresh, and says why (:meth:`Pool.pick`).
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from flakehunt.plan import derive
from flakehunt.runner import Attached, Child, signal_group

#: the warm parent, run by path: importing the ``flakehunt`` package first would import
#: its plugin before pytest could mark it for assertion rewriting, and running it as a
#: script would put flakehunt's folder (its bisect.py...) before the standard library
SERVE = "import runpy; runpy.run_path({!r}, run_name='__main__')".format(
    str(Path(__file__).with_name("warm.py")))
#: seconds a fork request may take before the parent is given up
FORK_LIMIT = 10.0


class WarmParent:
    """One warm parent process and what it said: ready or not, its children's pids and
    exit codes."""

    def __init__(self, python: str, cwd: Path, env: dict[str, str], log: Path,
                 preload: list[list[str]], hash_seed: int, lifetime: int = 4) -> None:
        self.hash_seed = hash_seed
        self.lifetime = lifetime  # runs it serves, then it retires
        self.state = "warming"  # warming | ready | failed | closed (retired) | ended
        self.why = ""
        self.safe = 0  # the preloaded modules it found safe, when it refused
        self.served = 0  # runs given to it
        self.aged = 0  # of which counted against its lifetime (sweep runs)
        self.forks = 0  # of which forked
        self.rotating = True  # serves any run (else only its own hash seed's)
        self.used = 0  # the pool's pick count when it was last given a run
        self.forked: dict[int, int] = {}  # request id -> pid
        self.exits: dict[int, int] = {}  # pid -> exit code
        self.cpu: dict[int, float] = {}  # pid -> CPU seconds it and what it waited for used
        self.alive: set[int] = set()  # pids forked, not yet reported
        self.buffer = b""
        with open(log, "ab") as err:
            self.proc = subprocess.Popen(
                [python, "-c", SERVE], cwd=cwd, env={**env, "PYTHONHASHSEED": str(hash_seed)},
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                start_new_session=True)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin: IO[bytes] = self.proc.stdin
        self.out = self.proc.stdout.fileno()
        os.set_blocking(self.out, False)
        self.send({"preload": preload})

    def send(self, message: dict[str, Any]) -> None:
        try:
            self.stdin.write(json.dumps(message).encode() + b"\n")
            self.stdin.flush()
        except (OSError, ValueError):
            self.lost("it stopped reading")

    def pump(self) -> None:
        """Read what the parent said so far."""
        while self.state not in ("closed", "ended") or self.alive:
            try:
                chunk = os.read(self.out, 65536)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self.lost("it exited")
                return
            self.buffer += chunk
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                self.heard(json.loads(line))

    def heard(self, message: dict[str, Any]) -> None:
        if "ready" in message:
            self.state = "ready" if message["ready"] else "failed"
            self.why, self.safe = message.get("why", ""), message.get("safe", 0)
        elif "exit" in message:
            self.alive.discard(message["exit"])
            self.exits[message["exit"]] = message["code"]
            if isinstance(message.get("cpu"), (int, float)):
                self.cpu[message["exit"]] = float(message["cpu"])
        elif "pid" in message:
            self.forked[message["id"]] = message["pid"]
            self.alive.add(message["pid"])

    def lost(self, why: str) -> None:
        """The parent is gone: its children's exit codes with it (each is reported as
        killed once it has ended)."""
        if self.state in ("warming", "ready"):
            self.state, self.why = "failed", f"the warm parent died ({why})"
        elif self.state == "closed":
            self.state = "ended"
        for pid in list(self.alive):
            if not running(pid):
                self.alive.discard(pid)
                self.exits[pid] = -signal.SIGKILL

    def fork(self, request_id: int, request: dict[str, Any]) -> int | None:
        """Ask for a child; its pid, or None when the parent failed."""
        self.send({"id": request_id, **request})
        deadline = time.monotonic() + FORK_LIMIT
        while request_id not in self.forked and self.state == "ready":
            if time.monotonic() > deadline:
                self.state, self.why = "failed", "the warm parent did not fork in time"
                self.close()
                return None
            select.select([self.out], [], [], 0.05)
            self.pump()
        pid = self.forked.pop(request_id, None)
        self.forks += pid is not None
        if self.full and self.forks >= self.served:
            self.retire()  # its last run has its pid
        return pid

    @property
    def full(self) -> bool:
        """It was given all the sweep runs it serves (a rotating one; one for a replay's
        hash seed serves every run of that seed: its lifetime keeps no diversity)."""
        return self.rotating and self.aged >= self.lifetime

    def retire(self) -> None:
        """No more runs: the parent reports its children's ends, then exits."""
        if self.state in ("warming", "ready"):
            self.state = "closed"
            try:
                self.stdin.close()
            except OSError:
                pass

    def close(self, grace: float = 1.0) -> None:
        self.retire()
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            signal_group(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def memo_file(folder: Path, python: str, preload: list[list[str]]) -> Path:
    """Where :class:`Pool` keeps what it learned about this interpreter's preload."""
    key = hashlib.sha256(json.dumps([python, preload]).encode()).hexdigest()[:16]
    return folder / f"preload-{key}.json"


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Pool:
    """``size`` warm parents at a time, each serving ``lifetime`` runs (see the module's
    docstring); :meth:`pick` says which parent serves a run, or why none does."""

    def __init__(self, python: str, cwd: Path, env: dict[str, str], logdir: Path, seed: int,
                 preload: list[list[str]] | None = None, size: int = 2,
                 lifetime: int = 4, factory: Callable[..., WarmParent] = WarmParent,
                 memo: Path | None = None) -> None:
        """``factory``: how a parent is made (a fake in tests); ``memo``: a file where
        an earlier hunt with this very preload left where preloading has to stop
        (:func:`memo_file`), read now and written when a parent finds it."""
        self.python, self.cwd, self.env, self.logdir = python, cwd, env, logdir
        self.seed, self.size, self.lifetime = seed, size, lifetime
        self.factory = factory
        self.preload = list(preload or [])
        self.memo = memo
        self.parents: list[WarmParent] = []
        self.spawned = 0
        self.disabled = ""  # why the pool serves nothing (any more)
        self.notes: list[str] = []  # what the pool gave up on, for the report
        self.next_id = 0
        self.picks = 0  # runs given to parents so far (a parent's ``used``: its last)
        self.failed_seen: set[WarmParent] = set()
        logdir.mkdir(parents=True, exist_ok=True)
        self.recall()
        for _ in range(size):
            self.spawn()

    def spawn(self, hash_seed: int | None = None) -> WarmParent:
        """A new parent: one of the rotation (a hash seed from the hunt's seed), or one
        for a replay's own ``hash_seed``."""
        seed = derive(self.seed, "hash", self.spawned) if hash_seed is None else hash_seed
        parent = self.factory(self.python, self.cwd, self.env,
                            self.logdir / f"warm-{self.spawned}.log", self.preload, seed,
                            self.lifetime)
        parent.rotating = hash_seed is None
        self.parents.append(parent)
        self.spawned += 1
        return parent

    def recall(self) -> None:
        """Where an earlier hunt found preloading this list must stop (a module that
        warns when imported, say): cut there, so no parent is started in vain. Only
        ever a shorter preload: a parent still checks every module it imports."""
        try:
            known = json.loads(self.memo.read_text()) if self.memo else {}
            safe, why = int(known["safe"]), str(known["why"])
        except (OSError, ValueError, KeyError, TypeError):
            return
        if 0 <= safe < len(self.preload):
            self.preload = self.preload[:safe]
            self.notes.append(f"preloading stopped at {why} (found by an earlier hunt)")

    def remember(self, safe: int, why: str) -> None:
        if self.memo is None:
            return
        try:
            self.memo.parent.mkdir(parents=True, exist_ok=True)
            part = self.memo.with_name(f"{self.memo.name}.{os.getpid()}")
            part.write_text(json.dumps({"safe": safe, "why": why}))
            os.replace(part, self.memo)
        except OSError:
            pass  # a cache: the next hunt finds it again

    def pump(self) -> None:
        """Hear every parent; one that refused its preload is replaced by one that
        preloads only what it found safe; one that cannot even import pytest safely
        ends the pool."""
        for parent in list(self.parents):
            parent.pump()
            if parent.state != "failed" or parent in self.failed_seen:
                continue
            self.failed_seen.add(parent)
            if parent.safe < len(self.preload) and "importing" in parent.why:
                self.notes.append(f"preloading stopped at {parent.why}")
                self.remember(parent.safe, parent.why)
                self.preload = self.preload[:parent.safe]
            elif len(self.failed_seen) > self.size + 2 or parent.why.startswith("after"):
                self.disabled = parent.why
            if not self.disabled:
                self.spawn()
        for parent in self.parents:
            if parent.state in ("closed", "failed", "ended") and not parent.alive \
                    and parent.proc.poll() is not None:  # reaped
                parent.state = "ended" if parent.state == "closed" else parent.state
        self.parents = [p for p in self.parents
                        if p.state in ("warming", "ready", "closed") or p.alive]

    def pick(self, hash_seed: int | None, fresh_only: str = "",
             ages: bool = True) -> tuple[WarmParent | None, str]:
        """The parent to fork a run from, or why the run starts fresh. ``hash_seed``: the
        run's own (a replay's), None: any; ``fresh_only``: why the run needs a fresh
        process anyway (e.g. a network namespace); ``ages``: the run counts against the
        parent's lifetime (a sweep run; see the module's docstring)."""
        self.pump()
        if fresh_only or self.disabled:
            return None, fresh_only or f"warm start off: {self.disabled}"
        serving = [p for p in self.parents if p.state in ("warming", "ready") and not p.full
                   and (p.hash_seed == hash_seed if hash_seed is not None else p.rotating)]
        if not serving and hash_seed is not None:
            if self.live() >= self.size + 4:
                self.retire_idle_replay_parent()
            if self.live() >= self.size + 4:
                return None, f"no warm parent with its hash seed {hash_seed}"
            serving = [self.spawn(hash_seed)]
        parent = min(serving, key=lambda p: (p.state != "ready", p.aged, p.served))
        parent.served += 1
        parent.aged += ages
        self.picks += 1
        parent.used = self.picks
        if parent.full and parent.rotating:
            self.spawn()  # warming while the full one forks its last runs
        return parent, ""

    def live(self) -> int:
        return sum(p.state in ("warming", "ready") and not p.full for p in self.parents)

    def retire_idle_replay_parent(self) -> None:
        """Make room: the replay parent used longest ago with no run going retires."""
        idle = [p for p in self.parents if not p.rotating and not p.alive
                and p.state in ("warming", "ready")]
        if idle:
            min(idle, key=lambda p: p.used).retire()

    def request_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def close(self) -> None:
        for parent in self.parents:
            parent.retire()
        for parent in self.parents:
            parent.close()
        self.parents.clear()

    def summary(self) -> dict[str, Any]:
        return {"parents": self.spawned, "lifetime": self.lifetime,
                "preloaded_modules": len(self.preload),
                **({"off": self.disabled} if self.disabled else {}),
                **({"notes": self.notes} if self.notes else {})}


class WarmChild(Child):
    """A run forked by a warm parent; until the parent is ready it waits (and its slot
    is taken, as a fresh process's start-up would take it). Should the parent fail first,
    another parent with the same hash seed takes the run, else it starts as a fresh
    process (``fresh_argv``) and says why."""

    def __init__(self, pool: Pool, parent: WarmParent, request: dict[str, Any],
                 fresh_argv: list[str],
                 attach: Callable[[int], Attached | None] | None = None,
                 attach_when: Path | None = None, released: Path | None = None) -> None:
        super().__init__(attach, attach_when, released)
        self.pool, self.parent, self.request = pool, parent, request
        self.fresh_argv = fresh_argv
        self.forked: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None  # the fresh fallback
        self.cancelled: int | None = None  # stopped before it ever started
        self.retried = False  # handed to a second parent once
        self.start = {"kind": "warm", "hash_seed": parent.hash_seed}
        self.dispatch()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else self.forked

    def dispatch(self) -> None:
        """Fork once the parent is ready; start fresh if it failed."""
        if self.pid is not None:
            return
        self.pool.pump()
        if self.parent.state == "ready":
            self.forked = self.parent.fork(self.pool.request_id(), self.request)
        if self.forked is None and self.parent.state not in ("warming", "ready"):
            why = self.parent.why or "the warm parent ended"
            other, _ = self.pool.pick(self.parent.hash_seed)
            if other is not None and not self.retried:
                self.parent, self.retried = other, True
                return  # forked once that one is ready
            self.start = {"kind": "fresh", "why": why}
            self.fresh()
        if self.pid is not None:
            self.started = time.monotonic()
            self.apply()

    def fresh(self) -> None:
        with open(self.request["log"], "wb") as out:
            self.proc = subprocess.Popen(self.fresh_argv, env=self.request["env"],
                                         cwd=self.request["cwd"], stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)

    def exited(self) -> int | None:
        if self.cancelled is not None:
            return self.cancelled
        if self.proc is not None:
            return self.proc.poll()
        if self.forked is None:
            self.dispatch()
            return None
        self.parent.pump()
        code = self.parent.exits.get(self.forked)
        if code is not None and self.forked in self.parent.cpu:
            self.start["cpu"] = self.parent.cpu[self.forked]
        return code

    def wait_exit(self, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        if self.pid is None:  # never started: nothing to wait for
            self.cancelled = -signal.SIGKILL
            return
        while self.exited() is None and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.01)
