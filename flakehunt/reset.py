"""Child side: reset one state item right before one test (``--flakehunt-reset=JSON``).

flakehunt verifies a state-leak's culprit with one run: the polluter, then the victim,
with the one item the polluter changed put back, just before the victim, to what it
was before the polluter ran. If the victim then passes, that item is the cause.

The JSON (:class:`~flakehunt.wire.ResetRequest`) names the item by the kind and target
the state snapshot gave it (flakehunt.snapshot) and the test to reset it before. The
item's value is taken when collection ends (before any test), and put back when that
test's set-up starts: a container in place (others may hold it), anything else
rebound; an environment variable, the working directory, a logger's level, handlers
and propagation; an ``lru_cache`` cleared; ``mock.patch`` patches left started, stopped;
a reloaded module's globals, every one as it was (the classes a reload replaced).
"""

from __future__ import annotations

import copy
import importlib
import json
import logging
import os
import sys
from typing import Any, cast

import pytest

from flakehunt.testid import base_nodeid
from flakehunt.wire import ResetRequest

ABSENT = object()
CONTAINERS = (dict, list, set)


def parse_reset(text: str) -> ResetRequest:
    """The option's JSON -> a request; ValueError when it is not one."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--flakehunt-reset: not JSON: {exc}") from None
    if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str)
                                            for k in ("kind", "target", "before")):
        raise ValueError("--flakehunt-reset: needs kind, target and before (strings)")
    return cast(ResetRequest, raw)


def resolve(target: str) -> tuple[Any, str]:
    """``pkg.mod.obj.attr`` -> (the object holding the last name, the last name): the
    longest importable module prefix, then attributes."""
    parts = target.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        name = ".".join(parts[:cut])
        mod = sys.modules.get(name)
        if mod is None:
            continue
        obj: Any = mod
        for part in parts[cut:-1]:
            obj = getattr(obj, part)
        return obj, parts[-1]
    raise LookupError(f"no module holds {target}")


def capture_value(target: str) -> object:
    owner, name = resolve(target)
    value = getattr(owner, name, ABSENT)
    if isinstance(value, CONTAINERS):
        try:
            return copy.deepcopy(value)
        except Exception:
            return copy.copy(value)
    return value


def restore_value(target: str, saved: object) -> None:
    owner, name = resolve(target)
    now = getattr(owner, name, ABSENT)
    if saved is ABSENT:
        if now is not ABSENT:
            delattr(owner, name)
    elif isinstance(now, dict) and isinstance(saved, dict):
        now.clear()
        now.update(saved)
    elif isinstance(now, list) and isinstance(saved, list):
        now[:] = saved
    elif isinstance(now, set) and isinstance(saved, set):
        now.clear()
        now.update(saved)
    else:
        setattr(owner, name, saved)


def logger(name: str) -> logging.Logger:
    return logging.getLogger() if name == "root" else logging.getLogger(name)


class Resetter:
    """Takes the item's value before any test; puts it back before the named test."""

    def __init__(self, request: ResetRequest) -> None:
        self.request = request
        self.saved: object = ABSENT
        self.done = False

    def capture(self) -> object:
        kind, target = self.request["kind"], self.request["target"]
        if kind == "env":
            return {k: os.environ.get(k) for k in self.request.get("keys", [])}
        if kind == "cwd":
            return os.getcwd()
        if kind == "logging":
            lg = logger(target)
            return (lg.level, list(lg.handlers), lg.propagate, lg.disabled)
        if kind in ("cache", "patches"):
            return None
        if kind == "module":  # its globals, to undo a reload: every name as it was
            return dict(vars(sys.modules[target]))
        return capture_value(target)

    def restore(self) -> None:
        kind, target, saved = self.request["kind"], self.request["target"], self.saved
        if kind == "env":
            for k, v in cast(dict[str, Any], saved).items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        elif kind == "cwd":
            os.chdir(cast(str, saved))
        elif kind == "logging":
            lg = logger(target)
            level, handlers, lg.propagate, lg.disabled = cast(tuple[Any, ...], saved)
            lg.handlers[:] = handlers
            lg.setLevel(level)  # and clears the loggers' isEnabledFor caches
        elif kind == "cache":
            owner, name = resolve(target)
            getattr(owner, name).cache_clear()
        elif kind == "patches":
            importlib.import_module("unittest.mock").patch.stopall()
        elif kind == "module":
            names = vars(sys.modules[target])
            for name in [n for n in names if n not in cast(dict[str, Any], saved)]:
                del names[name]
            names.update(cast(dict[str, Any], saved))
        else:
            restore_value(target, saved)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        try:
            self.saved = self.capture()
        except Exception as exc:
            sys.stderr.write(f"flakehunt: cannot read {self.request['target']}: {exc}\n")
            self.done = True  # nothing to put back

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if self.done or base_nodeid(item) != self.request["before"]:
            return
        self.done = True
        try:
            self.restore()
        except Exception as exc:
            sys.stderr.write(f"flakehunt: cannot reset {self.request['target']}: {exc}\n")
