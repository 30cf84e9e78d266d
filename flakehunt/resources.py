"""What a fixture hands over that processes running side by side would share (child side).

Recorded once per fixture set-up, from the fixture's own value or set-up error and the
module globals its code names, never from names:

- ``port``: the fixture's value is a socket bound to a port a global of its module holds
  (``PORT = 47613``), or its set-up failed with "address already in use" and its code
  names exactly one global holding a port number;
- ``path``: the fixture's value is a path a global of its module holds, or its set-up
  failed on the file a global holds (``FileExistsError: .../migrate.lock``);
- ``tmp``: the fixture's value is a fixed file in the temporary folder every xdist
  worker of a run shares (not under pytest's per-worker ``basetemp``); its ``value``
  is the file's path relative to that folder.

The parent reads it (:class:`flakehunt.wire.Resource`) to give each worker its own.

And, for a failed assertion, which fixture's object the compared value was read from
(:func:`read_from`: ``msg = websocket.receive_json()`` then ``assert msg["type"] ==
...``), from the test function's own source. Standard library only; Python 3.9.
"""

from __future__ import annotations

import ast
import errno
import inspect
import os
import socket
import tempfile
import textwrap
import types
from collections.abc import Callable
from typing import Any

from flakehunt.wire import ReadFrom, Resource

PORTS = range(1, 65536)


def resource(func: Callable[..., Any], value: object, exc: BaseException | None,
             basetemp: str = "") -> Resource | None:
    code = getattr(func, "__code__", None)
    globs = getattr(func, "__globals__", None)
    if code is None or not isinstance(globs, dict):
        return None
    named = [(n, globs[n]) for n in code.co_names if n in globs]
    module = str(globs.get("__name__", ""))
    port = bound_port(value)
    if port is None and in_use(exc):
        ports = [(n, v) for n, v in named if is_port(v)]
        port = ports[0][1] if len(ports) == 1 else None
    if port is not None:
        for name, v in named:
            if is_port(v) and v == port:
                return {"kind": "port", "value": str(port), "global": name, "module": module}
    path = path_of(value) or (path_of(exc.filename) if isinstance(exc, OSError) else None)
    if path is None:
        return None
    for name, v in named:
        if path_of(v) == path:
            return {"kind": "path", "value": path, "global": name, "module": module}
    if value is not None and in_shared_tmp(path, basetemp):  # the same in every run
        rel = os.path.relpath(path, tempfile.gettempdir()).replace(os.sep, "/")
        return {"kind": "tmp", "value": rel, "module": module}
    return None


def is_port(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v in PORTS


def bound_port(value: object) -> int | None:
    if not isinstance(value, socket.socket):
        return None
    try:
        port = value.getsockname()[1]
    except (OSError, IndexError, TypeError):
        return None
    return port if is_port(port) else None


def in_use(exc: BaseException | None) -> bool:
    return isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE


def path_of(v: object) -> str | None:
    if isinstance(v, os.PathLike) or (isinstance(v, str) and os.path.isabs(v)):
        text = os.fspath(v)
        if isinstance(text, str) and os.path.isabs(text):
            return os.path.abspath(text)
    return None


def in_shared_tmp(path: str, basetemp: str) -> bool:
    """In the temporary folder, and not in pytest's own (per worker, per test) folders."""
    tmp = os.path.join(os.path.abspath(tempfile.gettempdir()), "")
    if not path.startswith(tmp):
        return False
    if basetemp and path.startswith(os.path.join(os.path.abspath(basetemp), "")):
        return False
    return not any(part.startswith("pytest-of-") for part in path[len(tmp):].split(os.sep))


def read_from(exc: BaseException, test_code: types.CodeType | None,
              fixtures: dict[str, object]) -> ReadFrom | None:
    """The local the test's failing line uses that the test last assigned from a call on
    a fixture's object (``local = fixture.call(...)``), and whether that was the first
    such call in the test."""
    tb, line = exc.__traceback__, 0
    while tb is not None:
        if tb.tb_frame.f_code is test_code:
            line = tb.tb_lineno
        tb = tb.tb_next
    if not line or test_code is None:
        return None
    tree = ast.parse(textwrap.dedent(inspect.getsource(test_code)))
    shift = test_code.co_firstlineno - 1
    failing = [n for n in ast.walk(tree) if isinstance(n, ast.stmt)
               and n.lineno + shift == line and not isinstance(n, ast.FunctionDef)]
    if not failing:
        return None
    used = {n.id for n in ast.walk(failing[0]) if isinstance(n, ast.Name)}
    reads = [(n.lineno + shift, n.targets[0].id, n.value.func) for n in ast.walk(tree)
             if isinstance(n, ast.Assign) and len(n.targets) == 1
             and isinstance(n.targets[0], ast.Name) and isinstance(n.value, ast.Call)
             and isinstance(n.value.func, ast.Attribute)
             and isinstance(n.value.func.value, ast.Name)
             and n.value.func.value.id in fixtures and n.lineno + shift < line]
    mine = sorted((r for r in reads if r[1] in used), key=lambda r: r[0])
    if not mine:
        return None
    at, local, func = mine[-1]
    fixture = func.value.id  # type: ignore[attr-defined]
    earlier = [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == func.attr
               and isinstance(n.value, ast.Name) and n.value.id == fixture
               and n.lineno + shift < at]
    return {"local": local, "fixture": fixture, "call": func.attr,
            "key": lookup_key(failing[0], local), "line": at, "first": not earlier}


def lookup_key(stmt: ast.stmt, local: str) -> str:
    """The constant key the statement looks ``local`` up by (``local["type"]``), or ''."""
    for n in ast.walk(stmt):
        if (isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name)
                and n.value.id == local):
            key = n.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                return key.value
    return ""
