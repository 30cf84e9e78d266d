"""A patch per root cause: an autouse fixture in the nearest conftest.py, as a unified
diff that ``git apply`` accepts from the suite's root (pure: the files come in as text).

- ``state-leak`` with a culprit: the fixture deep-copies the culprit's contents before
  each test and, after it, puts the object back and restores its contents in place
  (so code holding a reference to the container sees the restored contents too);
  ``os.environ``, the working directory, ``sys.path``, the root logger's handlers and
  the event-loop policy are saved and restored the same way; a named logger's level,
  handlers, propagation and disabled flag are put back (``setLevel``, which also
  clears logging's level caches); an ``lru_cache`` is cleared after each test.
- ``loop-closed``: when a follow-up run reset one state item alone before a test of
  the cluster and the test then passed, that item is reset after each test (a cache
  cleared, a global put back). Else, with a holder reached through a fixture (its
  attributes or literal-keyed items): before and after each test that uses that
  fixture, the holder's attribute is dropped (set to None) when it keeps a closed
  event loop, and the module globals the polluters left holding such a holder are put
  back after each test.
- everything else: no patch, and :func:`make` says why.

Whether a patch works is not decided here: :mod:`flakehunt.fixing` runs it.
"""

from __future__ import annotations

import ast
import difflib
import posixpath
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flakehunt import racefix
from flakehunt.model import Category, Cluster, Culprit

#: rootdir-relative path -> the file's text, None when there is no such file
Read = Callable[[str], "str | None"]

#: where a dotted module name may live, relative to the suite's root
MODULE_ROOTS = ("", "src")


@dataclass(frozen=True)
class Seen:
    """What the hunt's runs showed beyond the cluster, for its patch."""

    #: project ``event_loop`` fixtures pytest-asyncio >= 1.0 ignores (``path:line (scope)``)
    dead_event_loop: tuple[str, ...] = ()
    #: the scope of the culprit's fixture, as the runs recorded it
    fixture_scope: str | None = None
    #: a timing race's stream and the background task writing to it, or why none
    stream: racefix.Stream | str = racefix.WHY + "no failing execution of it was recorded"
    #: (kind, target) of a state item a follow-up run reset alone right before one of the
    #: cluster's tests, which then passed
    reset_passed: tuple[str, str] | None = None
    #: (kind, target) of what the cluster's polluters left changed
    leaked: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Patch:
    path: str  # the file it changes, relative to the suite's root
    old: str | None  # its text before (None: the patch creates it)
    new: str
    diff: str


def make(c: Cluster, read: Read, seen: Seen = Seen()) -> Patch | str:
    """The patch for cluster ``c`` against the files ``read`` gives, or why there is none."""
    path = conftest_for(c, read)
    old = read(path)
    if c.category is Category.LOOP_CLOSED and covering(seen.dead_event_loop, c.tests):
        shared = loop_scope_patch(c, path, old, seen)
        if isinstance(shared, Patch):
            return shared  # else: the holder reset below
    body = fixture_code(c, read, seen)
    if not body.startswith("@pytest"):
        return body
    name = unique_name(f"_flakehunt_{c.slug.replace('-', '_')}", old or "")
    code = body.replace("NAME", name)
    new = append(old, code)
    return Patch(path, old, new, unified(path, old, new))


def fixture_code(c: Cluster, read: Read, seen: Seen = Seen()) -> str:
    """The fixture's source (with ``NAME`` for its name), or why there is none."""
    u = c.culprit
    if c.category is Category.STATE_LEAK:
        if u is None:
            return "no patch: the evidence names no state item the polluter left changed"
        return restore_code(u, read)
    if c.category is Category.LOOP_CLOSED:
        return loop_code(u, read, seen)
    if c.category is Category.RACE and u is not None and u.kind in PER_WORKER:
        return per_worker_code(u)
    if c.category is Category.RACE and isinstance(seen.stream, str):
        return seen.stream
    if c.category is Category.RACE and isinstance(seen.stream, racefix.Stream):
        s = seen.stream
        doc = docstring(f"race: in {len(c.tests)} test(s), a read of `{s.fixture}`.{s.call}() "
                        f"skips what {s.task}, the background task `{s.fixture}` started, "
                        f"writes ({', '.join(map(repr, s.skip))}), waiting up to "
                        f"{racefix.TIMEOUT:g} s for the message the test expects")
        return racefix.stream_code(s, c.tests).replace("DOC", doc)
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
    if u.kind == "logging":
        return logging_code(target, doc)
    split = split_target(target, read)
    if split is None:
        return (f"no patch: {target} is not a module global of the suite's own files "
                "(no module of it found under the suite's root)")
    module, chain, attr = split
    if u.kind == "cache":
        return (f"@pytest.fixture(autouse=True)\ndef NAME():\n{docstring(CLEARS % target)}"
                "    import importlib\n\n"
                f"    holder = {holder_expr(module, chain)}\n"
                f"    yield\n    holder.{attr}.cache_clear()\n")
    code = (f"@pytest.fixture(autouse=True)\ndef NAME():\n{doc}"
            "    import copy\n    import importlib\n\n"
            f"    holder = {holder_expr(module, chain)}\n    original = holder.{attr}\n")
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


CLEARS = "state-leak: after each test, clear the answers the lru_cache %s keeps"


def holder_expr(module: str, chain: list[str]) -> str:
    return f"importlib.import_module(\"{module}\")" + "".join(f".{a}" for a in chain)


def logging_code(name: str, doc: str) -> str:
    """A logger's level, handlers, propagation and disabled flag put back after each
    test; ``setLevel`` also clears the level caches of every logger."""
    return (f"@pytest.fixture(autouse=True)\ndef NAME():\n{doc}    import logging\n\n"
            f"    logger = logging.getLogger({'' if name == 'root' else name!r})\n"
            "    saved = (logger.level, list(logger.handlers), logger.propagate, "
            "logger.disabled)\n    yield\n"
            "    level, handlers, logger.propagate, logger.disabled = saved\n"
            "    logger.handlers[:] = handlers\n"
            "    logger.setLevel(level)  # also clears logging's isEnabledFor caches\n")


def loop_code(u: Culprit | None, read: Read, seen: Seen) -> str:
    """A loop-closed cluster's fixture: the state item whose reset alone made a test of
    it pass, reset after each test; else the dead loop dropped from the holder the
    fixture hands over, and the module globals the polluters left holding that holder
    put back after each test (so the next test makes its own)."""
    if seen.reset_passed is not None:
        kind, target = seen.reset_passed
        if kind in ("cache", "global"):
            code = restore_code(Culprit("cache" if kind == "cache" else "value", target), read)
            if code.startswith("@pytest"):
                return code.replace("state-leak: ", "loop-closed: ", 1)
    if u is None or not u.fixture:
        return ("no patch: the evidence names no fixture that hands the test the object "
                "keeping the dead loop")
    return reset_loop_code(u, holder_owners(u, read, seen.leaked))


#: snapshot kinds that are not a module global's dotted path (flakehunt.snapshot)
NOT_GLOBAL = ("env", "cwd", "logging", "cache", "reload")


def holder_owners(u: Culprit, read: Read, leaked: tuple[tuple[str, str], ...]
                  ) -> list[tuple[str, list[str], str]]:
    """The module globals of the suite's files that the polluters left holding an object
    whose attribute named like the holder's changed: ``m._client`` for ``m._client.loop``."""
    attr = u.target.rpartition(".")[2]
    out = []
    for kind, what in leaked:
        owner, _, last = what.rpartition(".")
        split = split_target(owner, read) if kind not in NOT_GLOBAL and last == attr else None
        if split is not None and split not in out:
            out.append(split)
    return out


def reset_loop_code(u: Culprit, owners: Sequence[tuple[str, list[str], str]] = ()) -> str:
    obj, _, attr = u.target.rpartition(".")
    fixture = u.fixture or ""
    via = safe_via(u.via)
    if not (attr.isidentifier() and fixture.isidentifier() and via is not None):
        return f"no patch: {u.target} (via {u.via!r}) is not an attribute a fixture can reach"
    named = ", ".join(".".join([m, *c, a]) for m, c, a in owners)
    doc = docstring(f"loop-closed: before and after each test using `{fixture}`, drop the "
                    f"closed event loop {u.target} keeps from an earlier test"
                    + (f"; after each test, {named} is put back as it was before it"
                       if owners else ""))
    save = "".join(f"    holder = {holder_expr(m, c)}\n"
                   f"    owners.append((holder, \"{a}\", holder.{a}))\n" for m, c, a in owners)
    code = (f"@pytest.fixture(autouse=True)\ndef NAME(request):\n{doc}"
            "    import asyncio\n" + ("    import importlib\n" if owners else "") + "\n"
            "    def drop_dead_loop():\n"
            "        try:\n"
            f"            holder = request.getfixturevalue(\"{fixture}\"){via}\n"
            "        except (LookupError, AttributeError, TypeError):  # not there (yet)\n"
            "            return\n"
            f"        held = getattr(holder, \"{attr}\", None)\n"
            "        if isinstance(held, asyncio.AbstractEventLoop) and held.is_closed():\n"
            f"            setattr(holder, \"{attr}\", None)\n\n")
    if owners:
        code += ("    owners = []  # (object, attribute, what it held before the test)\n" + save)
    code += (f"    using = \"{fixture}\" in request.fixturenames\n"
             "    if using:\n        drop_dead_loop()\n    yield\n"
             "    if using:\n        drop_dead_loop()\n")
    if owners:
        code += "    for holder, name, value in owners:\n        setattr(holder, name, value)\n"
    return code


#: one step of a path from a fixture's value: ``.attr``, ``['key']`` or ``[0]``
STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)"
                  r"|\[('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|-?[0-9]+)\]")


def safe_via(via: str) -> str | None:
    """``via`` rewritten as Python that reads it from the fixture's value (attributes,
    and items keyed by a string or integer literal), or None when it is anything else."""
    out, at = [], 0
    while at < len(via):
        m = STEP.match(via, at)
        if m is None:
            return None
        if m.group(1) is not None:
            out.append(f".{m.group(1)}")
        else:
            key = ast.literal_eval(m.group(2))
            if not isinstance(key, (str, int)):
                return None
            out.append(f"[{key!r}]")
        at = m.end()
    return "".join(out)


PER_WORKER = {
    # the shared resource's kind -> (modules to import, how each worker gets its own)
    "port": ("importlib\n    import socket",
             "    module = importlib.import_module(\"MODULE\")\n"
             "    with socket.socket() as probe:  # port 0: the system picks a free one\n"
             "        probe.bind((\"\", 0))\n"
             "        monkeypatch.setattr(module, \"GLOBAL\", probe.getsockname()[1])\n"),
    "path": ("importlib\n    import os",
             "    module = importlib.import_module(\"MODULE\")\n"
             "    old = module.GLOBAL\n"
             "    head, tail = os.path.split(os.fspath(old))\n"
             "    stem, ext = os.path.splitext(tail)\n"
             "    worker = os.environ.get(\"PYTEST_XDIST_WORKER\", \"main\")\n"
             "    new = os.path.join(head, f\"{stem}-{worker}{ext}\")\n"
             "    monkeypatch.setattr(module, \"GLOBAL\", type(old)(new))\n"),
    "tmp": ("tempfile",
            "    own = request.getfixturevalue(\"tmp_path\")  # this test's, in this worker's\n"
            "    monkeypatch.setattr(tempfile, \"tempdir\", str(own))\n"),
}
#: what each kind's fix says it does
PER_WORKER_SAYS = {
    "port": "a free port (port 0) in MODULE.GLOBAL instead of the fixed VALUE",
    "path": "the xdist worker id in the file name of MODULE.GLOBAL (VALUE)",
    "tmp": "its own temporary folder (tmp_path) for VALUE instead of the one workers share",
}


def per_worker_code(u: Culprit) -> str:
    """Each xdist worker its own resource, for the tests using the fixture that hands
    over the shared one: the module global holding it patched for the test."""
    module, _, name = u.target.rpartition(".")
    fixture = u.fixture or ""
    if not fixture.isidentifier() or (u.kind != "tmp" and not (
            name.isidentifier() and all(p.isidentifier() for p in module.split(".")))):
        return f"no patch: {u.target} (fixture {u.fixture!r}) is not a global a fixture can reach"
    imports, body = PER_WORKER[u.kind]
    says = (PER_WORKER_SAYS[u.kind].replace("MODULE", module).replace("GLOBAL", name)
            .replace("VALUE", u.detail))
    doc = docstring(f"race: each test using `{fixture}` gets {says}, so xdist workers "
                    "running side by side do not share it")
    body = body.replace("MODULE", module).replace("GLOBAL", name)
    return (f"@pytest.fixture(autouse=True)\ndef NAME(request):\n{doc}"
            f"    if \"{fixture}\" not in request.fixturenames:\n        yield\n        return\n"
            f"    import {imports}\n\n"
            "    monkeypatch = request.getfixturevalue(\"monkeypatch\")\n"
            f"{body}    yield\n")


WIDE_SCOPES = ("class", "module", "package", "session")
#: the hooks a conftest may take the loop-scope marking in, the first one it lacks
MARK_HOOKS = ("pytest_collection_modifyitems(items)", "pytest_itemcollected(item)")


def loop_scope_patch(c: Cluster, path: str, old: str | None, seen: Seen) -> Patch | str:
    """The tests using the culprit's fixture run on one event loop of that fixture's
    scope (the dead ``event_loop`` override meant to share one), and the dead override
    is removed when it is in the same conftest.py."""
    u, scope = c.culprit, seen.fixture_scope
    if u is None or not u.fixture or not u.fixture.isidentifier() or scope not in WIDE_SCOPES:
        return ("no patch: a dead event_loop override is named, but no wider-scoped fixture "
                "of the tests keeps the loop, so no loop scope to share")
    text = old or ""
    hook = next((h for h in MARK_HOOKS if f"def {h.split('(')[0]}(" not in text), None)
    if hook is None:
        return f"no patch: {path} already defines both hooks a loop-scope marking can use"
    removed = without_dead_override(text, path, seen.dead_event_loop)
    gone = "; the dead event_loop override is removed" if removed != text else ""
    doc = docstring(f"loop-closed: the tests using `{u.fixture}` ({scope}-scoped) run on one "
                    f"{scope}-scoped event loop, since {u.target} keeps the loop it first "
                    f"met{gone}")
    loop_each = "for item in items:" if hook.endswith("(items)") else "for item in [item]:"
    code = (f"@pytest.hookimpl(trylast=True)\ndef {hook}:\n{doc}"
            f"    {loop_each}\n"
            f"        if \"{u.fixture}\" in getattr(item, \"fixturenames\", ()) and "
            "item.get_closest_marker(\"asyncio\"):\n"
            f"            item.add_marker(pytest.mark.asyncio(loop_scope=\"{scope}\"), "
            "append=False)\n")
    new = append(removed if old is not None else None, code)
    return Patch(path, old, new, unified(path, old, new))


def covering(dead: tuple[str, ...], tests: tuple[str, ...]) -> tuple[str, ...]:
    """The dead ``event_loop`` overrides whose file's folder holds every one of the tests
    (a conftest.py above them, or their own module)."""
    out = []
    for loc in dead:
        folder = posixpath.dirname(loc.split(" ", 1)[0].rpartition(":")[0])
        if all(posixpath.commonpath([folder, t.split("::", 1)[0]]) == folder if folder else True
               for t in tests):
            out.append(loc)
    return tuple(out)


def without_dead_override(text: str, path: str, dead: tuple[str, ...]) -> str:
    """``text`` without the ``event_loop`` fixture the evidence located in it (its
    decorators and body), else unchanged."""
    lines = text.splitlines(keepends=True)
    for loc in dead:
        where, _, line = loc.split(" ", 1)[0].rpartition(":")
        if where != path or not line.isdigit():
            continue
        start = int(line) - 1
        head = start
        while head < len(lines) and lines[head].startswith("@"):
            head += 1  # the decorators
        if head >= len(lines) or not lines[head].startswith(("def event_loop(",
                                                             "async def event_loop(")):
            continue
        end = next((i for i in range(head + 1, len(lines))
                    if lines[i].strip() and not lines[i][0].isspace()), len(lines))
        while end > start and not lines[end - 1].strip():
            end -= 1
        return "".join(lines[:start]).rstrip("\n") + "\n" + "".join(lines[end:])
    return text


def append(old: str | None, code: str) -> str:
    """``old`` (None: a new file) with ``code`` at its end, importing pytest if needed."""
    if old is None:
        return "import pytest\n\n\n" + code
    head = "" if re.search(r"^import pytest\b", old, re.M) else "import pytest  # noqa: E402\n"
    return old.rstrip("\n") + "\n\n\n" + (head + "\n\n" if head else "") + code


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
