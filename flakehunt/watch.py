"""What a run does that the runs beside it could collide with (child side).

An audit hook (:func:`sys.addaudithook`) sees every ``bind``, ``connect``, name lookup
and file write of the pytest process and records, once each, a fixed port it bound, a
file it wrote in the project's tree, and a connection it needed outside its own process
(:class:`flakehunt.wire.SharedRecord`, in the run's ``shared.jsonl``). flakehunt reads
these to decide whether its runs may share the machine (:mod:`flakehunt.isolation`).
Writes by other programs the tests start are not seen. The hook cannot be removed: it
goes inert at unconfigure, and never raises into the audited call.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import sys
import tempfile
import weakref
from typing import TYPE_CHECKING, Any

from flakehunt.wire import SHARED

if TYPE_CHECKING:
    import pytest

#: records per pytest process, at most
LIMIT = 50
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
LOCAL_NAMES = ("localhost", "")


class Watch:
    def __init__(self, out: str, rootdir: str, skip: list[str]) -> None:
        self.file = os.path.join(out, SHARED)
        self.root = os.path.join(os.path.abspath(rootdir), "")
        self.skip = tuple(os.path.join(os.path.abspath(p), "") for p in skip if p)
        self.seen: set[tuple[str, str]] = set()
        self.sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()  # bound here
        self.active = True
        self.busy = False  # our own writes are audited too

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active or self.busy or event not in EVENTS:
            return
        self.busy = True
        try:
            EVENTS[event](self, args)
        except Exception:  # noqa: BLE001, S110 - never break the audited call
            pass
        finally:
            self.busy = False

    # -- the events ----------------------------------------------------------------------
    def opened(self, args: tuple[Any, ...]) -> None:
        path, mode, flags = args
        writes = ((mode is not None and any(c in mode for c in "wax+"))
                  or (mode is None and isinstance(flags, int) and flags & WRITE_FLAGS))
        if writes:
            self.wrote(path)

    def changed(self, args: tuple[Any, ...]) -> None:
        self.wrote(args[0])

    def database(self, args: tuple[Any, ...]) -> None:
        """sqlite opens its file in C, unseen by ``open``: its connect is the write."""
        name = os.fsdecode(args[0]) if isinstance(args[0], (str, bytes, os.PathLike)) else ""
        if name and name != ":memory:" and not name.startswith("file:"):
            self.wrote(name)

    def wrote(self, path: Any) -> None:
        if isinstance(path, int):
            return
        full = os.path.abspath(os.fsdecode(path))
        if (full.startswith(self.root) and not full.startswith(self.skip)
                and "__pycache__" not in full
                and not (sys.pycache_prefix and full.startswith(sys.pycache_prefix))):
            self.record("tree", os.path.relpath(full, self.root))

    def bound(self, args: tuple[Any, ...]) -> None:
        sock, address = args
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            self.sockets.add(sock)
            if address[1]:
                self.record("port", f"{address[0] or '*'}:{address[1]}")

    def connected(self, args: tuple[Any, ...]) -> None:
        sock, address = args
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return
        host, port = address[0], address[1]
        if not loopback(host):
            self.record("remote", f"{host}:{port}")
        elif not any(own_port(s) == port for s in list(self.sockets)):
            self.record("local", f"{host}:{port}")

    def resolved(self, args: tuple[Any, ...]) -> None:
        host = args[0]
        if isinstance(host, bytes):
            host = host.decode(errors="replace")
        if host is not None and host not in LOCAL_NAMES and not loopback(host):
            self.record("remote", str(host))

    # -- the record ----------------------------------------------------------------------
    def record(self, kind: str, what: str) -> None:
        if (kind, what) in self.seen or len(self.seen) >= LIMIT:
            return
        self.seen.add((kind, what))
        test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]
        line = {"kind": kind, "what": what, "test": test}  # a wire.SharedRecord
        fd = os.open(self.file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, (json.dumps(line) + "\n").encode())
        finally:
            os.close(fd)


def loopback(host: str) -> bool:
    if host in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a name: resolved elsewhere


def own_port(sock: socket.socket) -> int | None:
    try:
        return int(sock.getsockname()[1])
    except (OSError, IndexError, TypeError):
        return None


EVENTS = {"open": Watch.opened, "os.remove": Watch.changed, "os.rename": Watch.changed,
          "os.mkdir": Watch.changed, "socket.bind": Watch.bound,
          "socket.connect": Watch.connected, "socket.connect_ex": Watch.connected,
          "socket.getaddrinfo": Watch.resolved, "sqlite3.connect": Watch.database}


class Plugin:
    """Watches the pytest process from configure to unconfigure (``--flakehunt-out``)."""

    def __init__(self, config: pytest.Config, out: str) -> None:
        own = [out, str(config.option.basetemp or ""), os.environ.get("TMPDIR", ""),
               tempfile.gettempdir()]  # the run's own folders, wherever they are
        os.makedirs(out, exist_ok=True)
        self.watch = Watch(out, str(config.rootpath), own)
        sys.addaudithook(self.watch.hook)

    def pytest_unconfigure(self) -> None:
        self.watch.active = False
