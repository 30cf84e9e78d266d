"""A timing race's patch, only where the evidence shows the whole story (pure):

(a) a task a fixture started is still pending when the test fails;
(b) the failing line compares a value the test read from that fixture's object, its
    first read of it (``msg = websocket.receive_json()`` then ``assert msg["type"] ==
    "subscribed"``);
(c) the value it got is one the pending task's code writes (``"pong"``), the one it
    expected is not.

Then the patch wraps that read, for the cluster's tests only: it skips what the task
writes, until the expected message comes or a timeout passes (then it returns what it
read, so a test never hangs on the patch). Otherwise :func:`stream_race` says which part
the evidence lacks.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from flakehunt.wire import Anatomy

#: seconds the patched read keeps skipping the background task's messages
TIMEOUT = 5.0
WHY = ("no patch: a timing race is patched only where the failing line reads what a "
       "fixture's background task also writes; here ")
COMPARED = re.compile(r"assert (.+?) == (.+?)\s*$")


@dataclass(frozen=True)
class Stream:
    fixture: str
    call: str  # the read method on the fixture's object
    key: str  # the failing line's lookup key ("" : the value itself)
    skip: tuple[str, ...]  # what the pending task writes that the test got instead
    task: str  # the pending task's coroutine


def stream_race(failures: Iterable[tuple[str, Anatomy]]) -> Stream | str:
    """From (failure message, anatomy) pairs of the cluster's failing executions: the
    stream to patch, or why there is none."""
    missing = "no failing execution recorded the pending tasks of its fixtures"
    for message, fa in failures:
        read = fa.get("read_from")
        if not read or not read.get("first"):
            missing = ("the failing line compares no value the test read first from a "
                       "fixture's object")
            continue
        fixture = read.get("fixture", "")
        tasks = [t for t in fa.get("tasks_from_fixtures", []) if t.get("fixture") == fixture
                 and t.get("user")]
        if not tasks:
            missing = (f"no task started by `{fixture}` (whose object the failing line's "
                       "value was read from) was pending at the failure")
            continue
        got = compared(message)
        writes = {w for t in tasks for w in t.get("writes", [])}
        if got is None or got[0] not in writes or got[1] in writes:
            missing = (f"the value the test got is not one the pending task "
                       f"{tasks[0].get('task')} of `{fixture}` writes")
            continue
        return Stream(fixture, read.get("call", ""), read.get("key", ""), (got[0],),
                      tasks[0].get("task", "?"))
    return WHY + missing


def compared(message: str) -> tuple[str, str] | None:
    """(got, expected) strings of an ``assert got == expected`` failure message."""
    m = COMPARED.search(message.splitlines()[0] if message else "")
    if m is None:
        return None
    try:
        got, expected = ast.literal_eval(m.group(1)), ast.literal_eval(m.group(2))
    except (ValueError, SyntaxError):
        return None
    if isinstance(got, str) and isinstance(expected, str):
        return got, expected
    return None


def q(text: str) -> str:
    """A Python string literal in double quotes."""
    return json.dumps(text)


def stream_code(s: Stream, tests: tuple[str, ...]) -> str:
    """An autouse fixture (``NAME``, ``DOC``) wrapping the fixture object's read for the
    cluster's tests."""
    if not (s.fixture.isidentifier() and s.call.isidentifier()):
        return f"no patch: {s.fixture}.{s.call} is not a read a fixture can wrap"
    look = f"got.get({q(s.key)}) if isinstance(got, dict) else got" if s.key else "got"
    members = "".join(f"        {q(t)},\n" for t in tests)
    skip = "".join(f"{q(w)}, " for w in s.skip).rstrip()
    return (
        "@pytest.fixture(autouse=True)\ndef NAME(request):\nDOC"
        f"    if request.node.nodeid not in (\n{members}    ):\n"
        "        yield\n        return\n"
        "    import time\n\n"
        f"    stream = request.getfixturevalue({q(s.fixture)})\n"
        f"    read = stream.{s.call}\n"
        f"    background = ({skip})  # what {s.task} writes\n\n"
        "    def read_expected(*args, **kwargs):\n"
        f"        deadline = time.monotonic() + {TIMEOUT}\n"
        "        while True:\n"
        "            got = read(*args, **kwargs)\n"
        f"            kind = {look}\n"
        "            if kind not in background or time.monotonic() > deadline:\n"
        "                return got\n\n"
        f"    monkeypatch = request.getfixturevalue(\"monkeypatch\")\n"
        f"    monkeypatch.setattr(stream, {q(s.call)}, read_expected)\n"
        "    yield\n")
