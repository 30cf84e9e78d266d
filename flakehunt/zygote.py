"""Warm xdist workers: a run's pytest-xdist workers forked from a warm copy of the run.

A warm run (:mod:`flakehunt.warm`) starts without paying for the interpreter and the
imports, but pytest-xdist starts each of its workers as a fresh interpreter
(``PYTHON -u -c BOOTSTRAP``, execnet's popen gateway) that pays for them again: on a
small suite one run with two workers costs about three serial runs. So before pytest
starts, a warm run that will have workers forks a *zygote*: a single-threaded copy of
itself (pytest, its plugins and the suite's installed dependencies imported, none of
the suite's own modules), listening on a Unix socket in a private folder. The run's
pytest gets ``--tx popen//python=CLIENT`` instead of plain ``popen``, where CLIENT is
this file run as a script (``python -I -S zygote.py SOCKET RECORD``: the standard
library only, a few milliseconds). Each client hands its stdin, stdout and stderr, its
environment and working directory to the zygote and waits; the zygote forks a worker
that takes them over and runs execnet's bootstrap as the fresh interpreter would, and
tells the client its pid and, at the end, its exit code.

The worker is the zygote's child, and the zygote the run's: both are in the run's
session, process group and cgroup, so the run's profiles, time limits and kills reach
them. Each worker starts from the same state a fresh one reaches after its imports:
its own environment and cwd, ``sys.argv == ['-c']``, a fresh ``__main__``, ``random``
reseeded by the fork (and numpy's, as a fresh import would).

Where anything fails (no socket, the zygote gone) the client execs the fresh
interpreter itself: that worker starts fresh. Every client appends one line to RECORD
(``warm PID`` or ``fresh WHY``); the parent reads it (:func:`flakehunt.wire.workers`).
The zygote ends when the run's process does (a pipe only the run holds open).

Runs on the suite's interpreter (Python 3.9+); the client part imports nothing but the
standard library and runs isolated (``-I``), so flakehunt's folder never shadows it.
"""

from __future__ import annotations

import gc
import os
import select
import signal
import socket
import struct
import sys

HEADER = struct.Struct("!I")
#: the longest Unix socket path every platform takes
PATH_LIMIT = 100


# -- the client: one per worker, started by execnet ------------------------------------

def encode(env: dict, cwd: str) -> bytes:
    items = [os.fsencode(cwd)] + [os.fsencode(k) + b"=" + os.fsencode(v)
                                   for k, v in env.items()]
    return b"\0".join(items)


def decode(data: bytes) -> tuple:
    cwd, *items = data.split(b"\0")
    env = {}
    for item in items:
        key, _, value = item.partition(b"=")
        env[os.fsdecode(key)] = os.fsdecode(value)
    return os.fsdecode(cwd), env


def note(record: str, line: str) -> None:
    try:
        fd = os.open(record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line.replace("\n", " ") + "\n").encode())
        finally:
            os.close(fd)
    except OSError:
        pass


def client(argv: list) -> int:
    """``SOCKET RECORD ARGS...``: become a worker forked by the zygote, else exec
    ``python ARGS`` (the fresh worker execnet asked for)."""
    path, record, rest = argv[0], argv[1], argv[2:]
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(path)
        payload = encode(dict(os.environ), os.getcwd())
        socket.send_fds(conn, [HEADER.pack(len(payload)) + payload], [0, 1, 2])
        pid = int(read_line(conn) or b"0")
        if pid <= 0:
            raise OSError("the zygote did not fork")
    except OSError as exc:
        note(record, f"fresh {exc.strerror or exc}")
        os.execv(sys.executable, [sys.executable, *rest])
    note(record, f"warm {pid}")

    def forward(signum: int, frame: object) -> None:
        try:
            os.kill(pid, signum)
        except OSError:
            pass

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    code = read_line(conn)
    return int(code) if code.lstrip(b"-").isdigit() else 1


def read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        try:
            chunk = conn.recv(64)
        except InterruptedError:
            continue
        if not chunk:
            break
        data += chunk
    return data.strip()


# -- the zygote: in the warm run's process, before pytest starts ----------------------

def python_spec(path: str, record: str) -> str:
    """execnet's ``python=`` for a worker started through the zygote at ``path``."""
    import shlex

    return shlex.join([sys.executable, "-I", "-S", os.path.abspath(__file__), path, record])


def socket_dir() -> str:
    """A private folder for the socket: the run's temporary directory when its path is
    short enough, else one in the system's."""
    import tempfile

    here = tempfile.mkdtemp(prefix="fhz-")
    if len(os.path.join(here, "s")) <= PATH_LIMIT:
        return here
    os.rmdir(here)
    return tempfile.mkdtemp(prefix="fhz-", dir="/tmp")


def start(record: str) -> str:
    """Fork the zygote; the ``python=`` spec of its workers ('' when it cannot be made)."""
    try:
        folder = socket_dir()
        path = os.path.join(folder, "s")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        os.chmod(path, 0o600)
        listener.listen(16)
    except OSError as exc:
        note(record, f"fresh no zygote: {exc}")
        return ""
    import flakehunt.warm  # noqa: F401 - what each worker becomes fresh with, imported once

    alive_r, alive_w = os.pipe()  # the run holds the write end until it exits
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(alive_w)
        try:
            Zygote(listener, alive_r, folder).loop()
        finally:
            os._exit(0)
    os.close(alive_r)
    listener.close()
    RUNNING[pid] = alive_w
    return python_spec(path, record)


#: the zygotes this process started: pid -> the write end of their pipe
RUNNING: dict = {}


def stop(limit: float = 5.0) -> None:
    """End this process's zygotes and reap them (no init may be there to reap them)."""
    import time

    deadline = time.monotonic() + limit
    for pid, alive_w in list(RUNNING.items()):
        os.close(alive_w)
        while os.waitpid(pid, os.WNOHANG) == (0, 0) and time.monotonic() < deadline:
            time.sleep(0.005)
        del RUNNING[pid]


class Zygote:
    def __init__(self, listener: socket.socket, alive: int, folder: str) -> None:
        self.listener, self.alive, self.folder = listener, alive, folder
        self.clients: dict = {}  # worker pid -> the client's connection
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)

    def loop(self) -> None:
        try:
            while True:
                ready, _, _ = select.select([self.listener.fileno(), self.alive, self.wake_r],
                                            [], [])
                if self.wake_r in ready:
                    os.read(self.wake_r, 4096)
                self.reap()
                if self.alive in ready:  # the run ended: its workers end with their pipes
                    return
                if self.listener.fileno() in ready:
                    self.accept()
        finally:
            for name in os.listdir(self.folder):
                os.unlink(os.path.join(self.folder, name))
            os.rmdir(self.folder)

    def accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
            data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
            while len(data) < HEADER.size or len(data) < HEADER.size + HEADER.unpack(
                    data[:HEADER.size])[0]:
                chunk = conn.recv(1 << 16)
                if not chunk:
                    raise OSError("the client left")
                data += chunk
        except OSError:
            return
        if len(fds) != 3:
            conn.close()
            return
        cwd, env = decode(data[HEADER.size:])
        sys.stdout.flush()
        sys.stderr.flush()
        gc.freeze()
        pid = os.fork()
        if pid == 0:
            self.become_worker(conn, fds, cwd, env)  # never returns
        for fd in fds:
            os.close(fd)
        self.clients[pid] = conn
        try:
            conn.sendall(b"%d\n" % pid)
        except OSError:
            pass

    def reap(self) -> None:
        while self.clients:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.clients.pop(pid, None)
            if conn is not None:
                code = os.waitstatus_to_exitcode(status)
                try:
                    conn.sendall(b"%d\n" % (code if code >= 0 else 128 - code))
                except OSError:
                    pass
                conn.close()

    def become_worker(self, conn: socket.socket, fds: list, cwd: str, env: dict) -> None:
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for other in self.clients.values():
                other.close()
            conn.close()
            self.listener.close()
            for fd in (self.alive, self.wake_r, self.wake_w):
                os.close(fd)
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
                os.close(fd)
            code = run_bootstrap(cwd, env)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # noqa: BLE001 - as an uncaught exception would end it
            import traceback

            traceback.print_exc()
        finally:
            from flakehunt.warm import finish

            os._exit(finish(code))


def run_bootstrap(cwd: str, env: dict) -> int:
    """What ``python -u -c BOOTSTRAP`` does after start-up, in this process."""
    import types

    from flakehunt.warm import become_fresh

    main = types.ModuleType("__main__")
    become_fresh(cwd, env, ["-c"], main, "")
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the process's own, as at start-up
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    exec(eval(sys.stdin.readline()), main.__dict__)  # noqa: S307 - execnet's bootstrap
    return 0


if __name__ == "__main__":
    sys.exit(client(sys.argv[1:]))
