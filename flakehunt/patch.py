"""A patch per root cause: an autouse fixture in the nearest conftest.py, as a unified
diff that ``git apply`` accepts from the suite's root (pure: the files come in as text).

- ``state-leak`` with a culprit: the fixture deep-copies the culprit's contents before
  each test and, after it, puts the object back and restores its contents in place
  (so code holding a reference to the container sees the restored contents too);
  ``os.environ``, the working directory, ``sys.path``, the root logger's handlers and
  the event-loop policy are saved and restored the same way.
- ``loop-closed`` with a holder reached through a fixture: before and after each test
  that uses that fixture, the holder's attribute is dropped (set to None) when it
  keeps a closed event loop.
- everything else: no patch, and :func:`make` says why.

Whether a patch works is not decided here: :mod:`flakehunt.fixing` runs it.
"""

from __future__ import annotations

import difflib
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass

from flakehunt.model import Category, Cluster, Culprit

#: rootdir-relative path -> the file's text, None when there is no such file
Read = Callable[[str], "str | None"]

#: where a dotted module name may live, relative to the suite's root
MODULE_ROOTS = ("", "src")


@dataclass(frozen=True)
class Patch:
    path: str  # the file it changes, relative to the suite's root
    old: str | None  # its text before (None: the patch creates it)
    new: str
    diff: str


def make(c: Cluster, read: Read) -> Patch | str:
    """The patch for cluster ``c`` against the files ``read`` gives, or why there is none."""
    body = fixture_code(c, read)
    if not body.startswith("@pytest"):
        return body
    path = conftest_for(c, read)
    old = read(path)
    name = unique_name(f"_flakehunt_{c.slug.replace('-', '_')}", old or "")
    code = body.replace("NAME", name)
    if old is None:
        new = "import pytest\n\n\n" + code
    else:
        head = "" if re.search(r"^import pytest\b", old, re.M) else "import pytest  # noqa: E402\n"
        new = old.rstrip("\n") + "\n\n\n" + (head + "\n\n" if head else "") + code
    return Patch(path, old, new, unified(path, old, new))


def fixture_code(c: Cluster, read: Read) -> str:
    """The fixture's source (with ``NAME`` for its name), or why there is none."""
    u = c.culprit
    if c.category is Category.STATE_LEAK:
        if u is None:
            return "no patch: the evidence names no state item the polluter left changed"
        return restore_code(u, read)
    if c.category is Category.LOOP_CLOSED:
        if u is None or not u.fixture:
            return ("no patch: the evidence names no fixture that hands the test the object "
                    "keeping the dead loop")
        return reset_loop_code(u)
    if c.category is Category.RACE:
        return ("no patch: a timing race is patched only where the evidence names the "
                "message stream the test reads and the background task writing to it; "
                "this evidence names neither")
    return "no patch: the root cause is unknown"


SAVERS = {
    # target -> (the module to import, save expression, restore statements)
    "os.environ": ("os", "dict(os.environ)",
                   "os.environ.clear()\n    os.environ.update(saved)"),
    "<cwd>": ("os", "os.getcwd()", "os.chdir(saved)"),
    "<sys.path>": ("sys", "list(sys.path)", "sys.path[:] = saved"),
    "<logging handlers>": ("logging", "list(logging.getLogger().handlers)",
                           "logging.getLogger().handlers[:] = saved"),
    "<event loop policy>": ("asyncio", "asyncio.get_event_loop_policy()",
                            "asyncio.set_event_loop_policy(saved)"),
}


def restore_code(u: Culprit, read: Read) -> str:
    target = "os.environ" if u.kind == "env" else u.target
    doc = docstring(f"state-leak: save {target} before each test and restore it after, "
                    "its contents in place")
    if target in SAVERS:
        module, save, restore = SAVERS[target]
        return (f"@pytest.fixture(autouse=True)\ndef NAME():\n{doc}    import {module}\n\n"
                f"    saved = {save}\n    yield\n    {restore}\n")
    split = split_target(target, read)
    if split is None:
        return (f"no patch: {target} is not a module global of the suite's own files "
                "(no module of it found under the suite's root)")
    module, chain, attr = split
    holder = f"importlib.import_module(\"{module}\")" + "".join(f".{a}" for a in chain)
    code = (f"@pytest.fixture(autouse=True)\ndef NAME():\n{doc}"
            "    import copy\n    import importlib\n\n"
            f"    holder = {holder}\n    original = holder.{attr}\n")
    if u.kind != "len":  # a value or an object rebound: put the original back
        return code + f"    yield\n    holder.{attr} = original\n"
    return code + (
        "    try:\n        saved = copy.deepcopy(original)\n"
        "    except Exception:  # items that cannot be deep-copied: keep the items themselves\n"
        "        saved = copy.copy(original)\n"
        f"    yield\n    holder.{attr} = original\n"
        "    original.clear()  # in place: whoever holds the container sees it restored\n"
        "    if hasattr(original, \"update\"):\n        original.update(saved)\n"
        "    else:\n        original.extend(saved)\n")


def reset_loop_code(u: Culprit) -> str:
    obj, _, attr = u.target.rpartition(".")
    fixture = u.fixture or ""
    if not (attr.isidentifier() and fixture.isidentifier() and valid_via(u.via)):
        return f"no patch: {u.target} (via {u.via!r}) is not an attribute a fixture can reach"
    doc = docstring(f"loop-closed: before and after each test using `{fixture}`, drop the "
                    f"closed event loop {u.target} keeps from an earlier test")
    return (
        f"@pytest.fixture(autouse=True)\ndef NAME(request):\n{doc}"
        "    import asyncio\n\n"
        "    def drop_dead_loop(holder):\n"
        f"        held = getattr(holder, \"{attr}\", None)\n"
        "        if isinstance(held, asyncio.AbstractEventLoop) and held.is_closed():\n"
        f"            setattr(holder, \"{attr}\", None)\n\n"
        f"    if \"{fixture}\" not in request.fixturenames:\n"
        "        yield\n        return\n"
        f"    holder = request.getfixturevalue(\"{fixture}\"){u.via}\n"
        "    drop_dead_loop(holder)\n    yield\n    drop_dead_loop(holder)\n")


def valid_via(via: str) -> bool:
    return via == "" or all(p.isidentifier() for p in via.lstrip(".").split("."))


def docstring(text: str) -> str:
    words = f"Added by flakehunt ({text}).".replace("\\", "/").replace('"""', "'''").split()
    lines, line = [], ""
    for w in words:
        if line and len(line) + len(w) > 80:
            lines.append(line)
            line = ""
        line = f"{line} {w}" if line else w
    lines.append(line)
    return '    """' + "\n    ".join(lines) + '"""\n'


def split_target(target: str, read: Read) -> tuple[str, list[str], str] | None:
    """``pkg.mod.obj.attr`` -> (``pkg.mod``, [``obj``], ``attr``): the longest prefix
    that is a module file under the suite's root (or ``src/``)."""
    parts = target.split(".")
    if len(parts) < 2 or not all(p.isidentifier() for p in parts):
        return None
    for cut in range(len(parts) - 1, 0, -1):
        rel = "/".join(parts[:cut])
        for root in MODULE_ROOTS:
            base = posixpath.join(root, rel) if root else rel
            if read(base + ".py") is not None or read(base + "/__init__.py") is not None:
                return ".".join(parts[:cut]), parts[cut:-1], parts[-1]
    return None


def conftest_for(c: Cluster, read: Read) -> str:
    """The nearest existing conftest.py above every test (and polluter) of the cluster,
    else a new one in their common folder."""
    dirs = [posixpath.dirname(t.split("::", 1)[0]) for t in (*c.tests, *c.polluter)]
    common = posixpath.commonpath(dirs) if dirs else ""
    here = common
    while True:
        path = posixpath.join(here, "conftest.py") if here else "conftest.py"
        if read(path) is not None:
            return path
        if not here:
            return posixpath.join(common, "conftest.py") if common else "conftest.py"
        here = posixpath.dirname(here)


def unique_name(name: str, text: str) -> str:
    n, out = 1, name
    while re.search(rf"\b{re.escape(out)}\b", text):
        n += 1
        out = f"{name}_{n}"
    return out


def unified(path: str, old: str | None, new: str) -> str:
    """A unified diff ``git apply`` accepts from the suite's root."""
    before = (old or "").splitlines(keepends=True)
    lines = list(difflib.unified_diff(before, new.splitlines(keepends=True),
                                      fromfile="/dev/null" if old is None else f"a/{path}",
                                      tofile=f"b/{path}"))
    out = [f"diff --git a/{path} b/{path}\n"]
    if old is None:
        out.append("new file mode 100644\n")
    for line in lines:
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)
