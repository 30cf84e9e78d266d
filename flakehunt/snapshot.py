"""Child side: snapshots of the state a test can leave behind, and their diff.

What is snapshot, before and after each test (in the spirit of regrtest's check):

- the project's own module globals, the objects they hold two attribute levels
  deep, and the class attributes of the project's own classes;
- ``functools.lru_cache`` / ``functools.cache`` fills (``cache_info().currsize``);
- ``os.environ`` (variable by variable), the working directory, ``sys.path``;
- the logging configuration: level, handlers, propagation of every logger;
- the event loop policy, and ``mock.patch`` patches left started.

An entry is small (a size, a short repr, an id), never the object itself; the diff
says what changed and was not restored. Every read is best effort.
"""

from __future__ import annotations

import asyncio
import collections
import importlib
import logging
import os
import sys
import types
from collections.abc import Sized
from pathlib import Path
from typing import Any

from flakehunt.owners import shared
from flakehunt.wire import StateChange

CONTAINERS = (dict, list, set, collections.deque)
SCALARS = (int, float, str, bool, bytes, type(None))
#: the scalar types themselves, matched exactly by id (a subclass takes record()'s way;
#: an id, because a metaclass may make a type unhashable)
PLAIN_SCALARS = frozenset(map(id, SCALARS))
SKIP_TYPES = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType,
              types.MethodType, property, classmethod, staticmethod)
#: the common skipped types, matched exactly before anything else is asked of a global
#: (a test module holds a function per test); never ``type``: classes are walked
SKIP_FIRST = frozenset(map(id, (types.ModuleType, types.FunctionType,
                                 types.BuiltinFunctionType)))
MAX_ATTRS = 60
VOLATILE_ENV = ("PYTEST_CURRENT_TEST",)
MAX_KEYS = 20000

#: one snapshot entry: its kind ("len", "value", "id", "env", "cwd", "type", "cache",
#: "logging"), then details
Entry = tuple[Any, ...]
#: a state snapshot: a global's (or a pseudo-key's, like ``<env>``) name -> its entry
Snapshot = dict[str, Entry]


#: module name -> how often ``importlib.reload`` re-ran it in this process
RELOADS: dict[str, int] = {}
ORIGINAL_RELOAD: list[Any] = []


def watch_reloads() -> None:
    """Count ``importlib.reload`` calls per module: a reload replaces a module's classes
    and functions under everyone who imported them before."""
    if ORIGINAL_RELOAD:
        return
    original = importlib.reload

    def reload(module: types.ModuleType) -> types.ModuleType:
        name = getattr(module, "__name__", None)
        if isinstance(name, str):
            RELOADS[name] = RELOADS.get(name, 0) + 1
        return original(module)

    ORIGINAL_RELOAD.append(original)
    importlib.reload = reload


def unwatch_reloads() -> None:
    if ORIGINAL_RELOAD:
        importlib.reload = ORIGINAL_RELOAD.pop()


def project_file(path: str | None, rootdir: str) -> bool:
    if not path:
        return False
    return path.startswith(rootdir) and "site-packages" not in path \
        and f"{os.sep}.venv{os.sep}" not in path


def home_module(value: object, name: str, mod: types.ModuleType) -> str:
    """Name a re-exported object by the module that defines its class, if it holds it."""
    home = getattr(type(value), "__module__", None)
    if home and home != mod.__name__:
        other = sys.modules.get(home)
        if other is not None and getattr(other, name, None) is value:
            return home
    return mod.__name__


def describe_size(value: Sized) -> tuple[int, int]:
    """(len, items inside nested containers), both capped."""
    try:
        n = len(value)
    except Exception:
        return (-1, -1)
    inner = 0
    if isinstance(value, dict):
        for i, v in enumerate(value.values()):
            if i > 1000:
                break
            if isinstance(v, CONTAINERS):
                inner += len(v)
    return (n, inner)


def cache_size(value: object) -> int | None:
    """How many answers an ``lru_cache``-wrapped function holds, if it is one."""
    if getattr(type(value), "cache_info", None) is None or not callable(value):
        return None  # the method on the type: a mock answers any attribute
    try:
        return int(value.cache_info().currsize)  # type: ignore[attr-defined]
    except Exception:
        return None


def test_case_class() -> type | None:
    """unittest's TestCase, if imported: pytest keeps its own bookkeeping on a unittest
    test class (the state its set-up shares lives in the objects it points to, which
    are snapshot)."""
    case = getattr(sys.modules.get("unittest"), "TestCase", None)
    return case if isinstance(case, type) else None


def own_attrs(value: object) -> list[tuple[str, object]]:
    """An object's own attributes (a class's: its data attributes), capped."""
    try:
        attrs = list(vars(value).items())
    except Exception:
        return []
    return [(a, v) for a, v in attrs if not a.startswith("__")][:MAX_ATTRS]


class StateTracker:
    """Snapshots of the project's mutable module-level state."""

    def __init__(self, rootdir: Path) -> None:
        self.rootdir = str(rootdir) + os.sep
        self.modules: list[types.ModuleType] = []
        self.known = 0
        self.ids: dict[int, str] = {}
        #: id of a type -> whether it is one of the project's classes, while a snapshot
        #: is taken (by id: a metaclass's own hash or equality never runs)
        self.project_types: dict[int, bool] = {}

    def project_modules(self) -> list[types.ModuleType]:
        if len(sys.modules) != self.known:
            self.known = len(sys.modules)
            mods = [m for m in list(sys.modules.values())
                    if isinstance(m, types.ModuleType)
                    and project_file(getattr(m, "__file__", None), self.rootdir)]
            self.modules = sorted(mods, key=lambda m: m.__name__)
        return self.modules

    def snapshot(self) -> Snapshot:
        snap: Snapshot = {}
        seen: set[int] = set()
        self.ids = {}  # id of a global (or its attribute) -> its name
        self.project_types.clear()  # a snapshot that raised may have left some
        case = test_case_class()
        for mod in self.project_modules():
            try:  # one C-level copy: a thread adding a global cannot break the walk
                items = list(vars(mod).items())
            except Exception:
                continue
            modname = mod.__name__
            for name, value in items:
                if id(type(value)) in SKIP_FIRST or name.startswith("__"):
                    continue  # functions, modules (a test module holds one per test)
                if isinstance(value, type):  # in the module that defines it only
                    if getattr(value, "__module__", None) == modname \
                            and not (case is not None and issubclass(value, case)) \
                            and id(value) not in seen:
                        seen.add(id(value))
                        self.record_class(snap, f"{modname}.{name}", value)
                    continue
                if shared(value):  # one object wherever it appears: under every name
                    record(snap, f"{modname}.{name}", value)
                    continue
                vid = id(value)
                if vid in seen:
                    continue
                seen.add(vid)
                if isinstance(value, SKIP_TYPES):
                    continue
                key = f"{home_module(value, name, mod)}.{name}"
                self.ids.setdefault(vid, key)
                self.record_deep(snap, key, value, 2)
                if len(snap) > MAX_KEYS:
                    self.project_types.clear()
                    return snap
        process_state(snap)
        self.project_types.clear()  # no id is kept past the snapshot
        return snap

    def record_deep(self, snap: Snapshot, key: str, value: object, levels: int,
                    top: bool = True) -> None:
        """The value, and ``levels`` levels of its attributes below it; below the first
        level only into instances of the project's own classes (a library object's
        insides are noise, and cost)."""
        if not record(snap, key, value) or levels <= 0 \
                or not hasattr(value, "__dict__") \
                or not (top or self.is_project_class(type(value))):
            return
        ids = self.ids
        for attr, v in own_attrs(value):
            sub = f"{key}.{attr}"
            if id(type(v)) in PLAIN_SCALARS:  # record()'s entry for it, without the call
                snap[sub] = ("value", repr(v)[:60])
            elif not isinstance(v, SKIP_TYPES):
                ids.setdefault(id(v), sub)
                self.record_deep(snap, sub, v, levels - 1, top=False)

    def is_project_class(self, cls: type) -> bool:
        known = self.project_types.get(id(cls))
        if known is None:
            mod = sys.modules.get(getattr(cls, "__module__", "") or "")
            known = self.project_types[id(cls)] = project_file(getattr(mod, "__file__", None),
                                                               self.rootdir)
        return known

    def record_class(self, snap: Snapshot, key: str, cls: type) -> None:
        """A project class's data attributes (what ``setattr(cls, ...)`` changes), and
        one level into the objects they hold (a singleton's state); and the class
        itself, so a module reloaded (its classes replaced) shows."""
        snap[key] = ("id", id(cls), "class")
        for attr, v in own_attrs(cls):
            kind = id(type(v))
            if kind in SKIP_FIRST:  # a plain method: never state, never a cache
                continue
            if kind in PLAIN_SCALARS:  # record()'s entry for it, without the call
                snap[f"{key}.{attr}"] = ("value", repr(v)[:60])
            elif not isinstance(v, SKIP_TYPES):
                self.record_deep(snap, f"{key}.{attr}", v, 1, top=False)
            elif cache_size(v) is not None:
                record(snap, f"{key}.{attr}", v)


#: a container this small, of scalars only, is snapshot with its contents too: a value
#: changed in place (``FLAGS["mode"] = "fast"``) leaves its size as it was
CONTENT_ITEMS = 16


def contents(value: object) -> str | None:
    """A small container of scalars, as a short text that changes with any of its
    values (None: too big, or it holds more than scalars)."""
    try:
        if len(value) > CONTENT_ITEMS:  # type: ignore[arg-type]
            return None
        items = list(value.items()) if isinstance(value, dict) else list(value)  # type: ignore[call-overload]
    except Exception:
        return None
    flat = [x for item in items for x in (item if isinstance(value, dict) else (item,))]
    if not all(id(type(x)) in PLAIN_SCALARS for x in flat):  # never a metaclass's __eq__
        return None
    if isinstance(value, dict):
        text = repr(dict(sorted(items, key=repr)))
    elif isinstance(value, set):
        text = repr(sorted(items, key=repr))
    else:
        text = repr(items)
    return text if len(text) <= 120 else f"{text[:100]}... ({hash(text) & 0xFFFFFF:06x})"


def record(snap: Snapshot, key: str, value: object) -> bool:
    """Put ``value``'s entry in ``snap``; whether its attributes may be looked into
    (not a container, a scalar or a cache)."""
    if isinstance(value, CONTAINERS):
        text = contents(value)
        snap[key] = ("len", *describe_size(value)) + (() if text is None else (text,))
        return False
    if isinstance(value, SCALARS):
        snap[key] = ("value", repr(value)[:60])
        return False
    size = cache_size(value)
    if size is not None:
        snap[key] = ("cache", size)
        return False
    snap[key] = ("id", id(value), type(value).__name__)
    return True


def process_state(snap: Snapshot) -> None:
    """What every process has: environment, cwd, sys.path, logging, policy, patches."""
    snap["<env>"] = ("env", env_entry())
    try:
        snap["<cwd>"] = ("cwd", os.getcwd())
    except OSError:
        snap["<cwd>"] = ("cwd", None)
    snap["<sys.path>"] = ("len", len(sys.path), 0)
    manager = logging.Logger.manager
    loggers = [("root", logging.getLogger())] + [
        (n, lg) for n, lg in list(manager.loggerDict.items()) if isinstance(lg, logging.Logger)]
    for name, lg in loggers[:500]:
        snap[f"<logging {name}>"] = ("logging", logger_state(lg))
    try:
        policy = type(asyncio.get_event_loop_policy()).__name__
    except Exception:
        policy = None
    snap["<event loop policy>"] = ("type", policy)
    for name, count in list(RELOADS.items()):
        snap[f"<reload {name}>"] = ("reload", count)
    mock = sys.modules.get("unittest.mock")
    active = getattr(getattr(mock, "_patch", None), "_active_patches", None)
    if isinstance(active, list):
        snap["<mock patches>"] = ("len", len(active), 0)


#: the environment last read (what ``os.environ`` holds underneath, without the
#: volatile variables), and its entry
ENV_SEEN: list[Any] = [None, ()]


def env_entry() -> tuple[tuple[str, int], ...]:
    """Every variable but the volatile ones, with a hash of its value; decoded again
    only when the environment changed since the last call (decoding it costs)."""
    raw = getattr(os.environ, "_data", None)
    encode = getattr(os.environ, "encodekey", None)
    if isinstance(raw, dict) and callable(encode):
        raw = dict(raw)
        for k in VOLATILE_ENV:
            raw.pop(encode(k), None)
        if raw == ENV_SEEN[0]:
            return ENV_SEEN[1]
    else:
        raw = None
    env = {k: v for k, v in os.environ.items() if k not in VOLATILE_ENV}
    entry = tuple(sorted((k, hash(v)) for k, v in env.items()))
    ENV_SEEN[:] = [raw, entry]
    return entry


#: what :func:`logger_state` says of a logger nobody configured
FRESH_LOGGER = "level NOTSET, no handlers"


def logger_state(lg: logging.Logger) -> str:
    handlers = ", ".join(type(h).__name__ for h in lg.handlers[:5]) or "no handlers"
    return (f"level {logging.getLevelName(lg.level)}, {handlers}"
            f"{'' if lg.propagate else ', propagate off'}{', disabled' if lg.disabled else ''}")


def diff(before: Snapshot, after: Snapshot) -> list[StateChange]:
    changes: list[StateChange] = []
    for key, new in after.items():
        old = before.get(key)
        if old == new:
            continue
        if key == "<env>":
            if old is not None:
                changes.append(env_change(dict(old[1]), dict(new[1])))
            continue
        if key.startswith("<logging ") and old is None and new[1] == FRESH_LOGGER:
            continue  # a logger first asked for: nothing configured yet
        change: StateChange = {"what": key, "kind": new[0], "before": show(old),
                               "after": show(new)}
        if old is not None and old[0] == new[0] == "len" and old[1:3] == new[1:3] \
                and len(old) > 3 and len(new) > 3:
            change["before"], change["after"] = old[3], new[3]  # changed in place
        if old is not None and old[0] == new[0] == "id" and old[2] == new[2]:
            change["after"] = "another class (replaced)" if new[2] == "class" \
                else f"another {new[2]} object (replaced)"
        if key.startswith("<logging "):
            change["what"], change["kind"] = key[len("<logging "):-1], "logging"
        elif key.startswith("<reload "):
            change["what"] = key[len("<reload "):-1]
        changes.append(change)
    return changes


def env_change(old: dict[str, int], new: dict[str, int]) -> StateChange:
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    changed = sorted(k for k in set(old) & set(new) if old[k] != new[k])
    text = f"added {added} removed {removed}" + (f" changed {changed}" if changed else "")
    return {"what": "os.environ", "kind": "env", "change": text,
            "keys": [*added, *removed, *changed]}


def show(entry: Entry | None) -> str:
    if entry is None:
        return "absent"
    kind = entry[0]
    if kind == "len":
        n = entry[1]
        inner = f" holding {entry[2]} items" if len(entry) > 2 and entry[2] > 0 else ""
        return f"{n} {'entry' if n == 1 else 'entries'}{inner}"
    if kind == "value":
        return entry[1]
    if kind == "id":
        return f"<{entry[2]} object>" if entry[2] != "class" else "the class"
    if kind == "cache":
        return f"{entry[1]} cached"
    if kind == "reload":
        return f"reloaded {entry[1]} time{'s' if entry[1] != 1 else ''}"
    return str(entry[1])
