"""The child's ownership walk, state snapshot and reset, in-process (no pytest run)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import types
from unittest import mock

import pytest

from flakehunt import owners, snapshot
from flakehunt.reset import Resetter, parse_reset


class Client:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop


def test_a_fixture_owns_what_it_reaches_through_containers_closures_and_methods():
    loop = asyncio.new_event_loop()
    try:
        client = Client(loop)

        def handler() -> Client:
            return client

        registry = {"clients": [client], "handler": handler}
        found = owners.owner_map({"registry": registry, "other": object()})
        assert found[id(client)] == ("registry", "['clients'][0]")
        bound = owners.reach(client.__init__)
        assert id(client) in bound  # a bound method reaches its object
        assert id(client) in owners.reach(handler)  # a closure reaches what it closes over
        held = [(type(h).__name__, attr, path) for h, attr, path
                in owners.holders(loop, [("registry", registry)], depth=4)]
        assert held == [("Client", "_loop", "registry['clients'][0]")]
    finally:
        loop.close()


def test_the_walk_is_bounded():
    deep: list[object] = []
    node = deep
    for _ in range(50):
        nxt: list[object] = []
        node.append(nxt)
        node = nxt
    assert len(list(owners.walk(deep))) == owners.DEPTH + 1
    wide = {i: [[i]] for i in range(10_000)}
    assert len(list(owners.walk(wide))) == 1 + 2 * owners.WIDTH  # items read per object
    assert len(list(owners.walk(wide, budget=100))) == 100


@pytest.fixture
def project(tmp_path):
    """A project module under tmp_path: a class with a class attribute, a singleton two
    attributes deep, an lru_cache."""
    mod = types.ModuleType("fh_proj")
    mod.__file__ = str(tmp_path / "fh_proj.py")
    exec("""
import functools
class Flags:
    dark = False
class Store:
    def __init__(self):
        self._entries = {}
class Service:
    def __init__(self):
        self.store = Store()
service = Service()
@functools.lru_cache(maxsize=None)
def settings():
    return {}
""", mod.__dict__)
    sys.modules["fh_proj"] = mod
    yield mod
    del sys.modules["fh_proj"]


def test_the_snapshot_sees_class_attributes_deep_state_caches_env_logging(project, tmp_path,
                                                                       monkeypatch):
    tracker = snapshot.StateTracker(tmp_path)
    before = tracker.snapshot()
    project.Flags.dark = True
    project.service.store._entries["k"] = 1
    project.settings()
    monkeypatch.setenv("FH_TEST_MODE", "prod")
    logging.getLogger("fh.quiet").setLevel(logging.ERROR)
    patch = mock.patch("fh_proj.settings", return_value=None)
    patch.start()
    try:
        changes = {c["what"]: c for c in snapshot.diff(before, tracker.snapshot())}
    finally:
        patch.stop()
        logging.getLogger("fh.quiet").setLevel(logging.NOTSET)
    assert changes["fh_proj.Flags.dark"]["after"] == "True"
    assert changes["fh_proj.service.store._entries"]["after"] == "1 entry"
    assert changes["fh_proj.settings"]["after"].startswith("<MagicMock")  # patched away
    assert changes["os.environ"]["keys"] == ["FH_TEST_MODE"]
    assert changes["<mock patches>"]["after"] == "1 entry"
    assert changes["fh.quiet"]["kind"] == "logging"
    assert "level ERROR" in changes["fh.quiet"]["after"]
    assert snapshot.cache_size(project.settings) == 1
    assert snapshot.cache_size(mock.MagicMock()) is None  # a mock answers any attribute


def reset_one(request: dict, change) -> None:
    """Capture, change, restore: what a child does around the polluter."""
    r = Resetter(parse_reset(__import__("json").dumps({**request, "before": "t::v"})))
    r.saved = r.capture()
    change()
    r.restore()


def test_resets_put_one_item_back(project, monkeypatch, tmp_path):
    held = project.service.store._entries  # others hold the container: reset in place
    reset_one({"kind": "global", "target": "fh_proj.service.store._entries"},
              lambda: held.update(k=1))
    assert held == {} and project.service.store._entries is held
    reset_one({"kind": "global", "target": "fh_proj.Flags.dark"},
              lambda: setattr(project.Flags, "dark", True))
    assert project.Flags.dark is False
    monkeypatch.setenv("FH_TEST_MODE", "dev")
    reset_one({"kind": "env", "target": "os.environ", "keys": ["FH_TEST_MODE"]},
              lambda: os.environ.update(FH_TEST_MODE="prod"))
    assert os.environ["FH_TEST_MODE"] == "dev"
    monkeypatch.chdir(tmp_path)
    reset_one({"kind": "cwd", "target": "<cwd>"}, lambda: os.chdir("/"))
    assert os.getcwd() == str(tmp_path)
    lg = logging.getLogger("fh.reset")
    reset_one({"kind": "logging", "target": "fh.reset"}, lambda: lg.setLevel(logging.ERROR))
    assert lg.level == logging.NOTSET and lg.isEnabledFor(logging.WARNING)
    project.settings()
    reset_one({"kind": "cache", "target": "fh_proj.settings"}, lambda: None)
    assert project.settings.cache_info().currsize == 0
    reset_one({"kind": "patches", "target": "<mock patches>"},
              lambda: mock.patch("fh_proj.Flags.dark", True).start())
    assert project.Flags.dark is False
    flags = project.Flags
    reset_one({"kind": "module", "target": "fh_proj"},  # a reload, undone
              lambda: project.__dict__.update(Flags=type("Flags", (), {}), extra=1))
    assert project.Flags is flags and not hasattr(project, "extra")


def test_a_bad_reset_request_is_refused():
    with pytest.raises(ValueError, match="not JSON"):
        parse_reset("{")
    with pytest.raises(ValueError, match="needs kind"):
        parse_reset('{"kind": "env"}')


def test_a_reload_is_seen_and_its_replaced_classes_too(project, tmp_path):
    import importlib

    tracker = snapshot.StateTracker(tmp_path)
    snapshot.watch_reloads()
    try:
        before = tracker.snapshot()
        project.__dict__["Flags"] = type("Flags", (), {"dark": False, "__module__": "fh_proj"})
        snapshot.RELOADS["fh_proj"] = snapshot.RELOADS.get("fh_proj", 0) + 1
        changes = {c["what"]: c for c in snapshot.diff(before, tracker.snapshot())}
        assert changes["fh_proj"]["kind"] == "reload"
        assert changes["fh_proj"]["after"].startswith("reloaded")
        assert changes["fh_proj.Flags"]["after"] == "another class (replaced)"
        assert importlib.reload is not snapshot.ORIGINAL_RELOAD[0]  # watched
    finally:
        snapshot.unwatch_reloads()
        snapshot.RELOADS.pop("fh_proj", None)
    assert not snapshot.ORIGINAL_RELOAD


def test_a_small_container_changed_in_place_shows_its_values(tmp_path):
    mod = types.ModuleType("fh_flags")
    mod.__file__ = str(tmp_path / "fh_flags.py")
    exec("FLAGS = {'mode': 'safe', 'retries': 3}\nBIG = {i: i for i in range(40)}\n"
         "NESTED = {'a': [1]}\n", mod.__dict__)
    sys.modules["fh_flags"] = mod
    try:
        tracker = snapshot.StateTracker(tmp_path)
        before = tracker.snapshot()
        mod.FLAGS["mode"] = "fast"  # same size
        mod.BIG[0] = -1  # too big to snapshot its values: unseen
        mod.NESTED["a"].append(2)  # not scalars: its size inside shows instead
        changes = {c["what"]: c for c in snapshot.diff(before, tracker.snapshot())}
    finally:
        del sys.modules["fh_flags"]
    flags = changes["fh_flags.FLAGS"]
    assert (flags["kind"], flags["before"], flags["after"]) == (
        "len", "{'mode': 'safe', 'retries': 3}", "{'mode': 'fast', 'retries': 3}")
    assert "fh_flags.BIG" not in changes
    assert changes["fh_flags.NESTED"]["after"] == "1 entry holding 2 items"


def test_the_environment_read_again_only_when_it_changed_and_every_change_seen(monkeypatch):
    monkeypatch.setenv("FLAKEHUNT_T_KEEP", "1")
    first = snapshot.env_entry()
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "a.py::t (call)")  # volatile: no change
    assert snapshot.env_entry() is first  # the entry kept, not decoded again
    monkeypatch.setenv("FLAKEHUNT_T_KEEP", "2")  # a value changed in place
    changed = snapshot.env_entry()
    assert changed != first and "FLAKEHUNT_T_KEEP" in dict(changed)
    monkeypatch.setenv("FLAKEHUNT_T_NEW", "x")
    assert "FLAKEHUNT_T_NEW" in dict(snapshot.env_entry())
    monkeypatch.delenv("FLAKEHUNT_T_KEEP")
    gone = snapshot.env_entry()
    assert "FLAKEHUNT_T_KEEP" not in dict(gone) and "PYTEST_CURRENT_TEST" not in dict(gone)
    slow = tuple(sorted((k, hash(v)) for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"))
    assert gone == slow  # what reading it all again gives


def test_a_class_whose_metaclass_is_unhashable_is_still_walked(tmp_path):
    mod = types.ModuleType("fh_meta")
    mod.__file__ = str(tmp_path / "fh_meta.py")
    exec("""
class Meta(type):
    def __eq__(cls, other):  # no __hash__: unhashable, and it fails against a scalar type
        return cls.tag == other.tag
class Part(metaclass=Meta):
    tag = "part"
    def __init__(self):
        self.size = 1
class Holder:
    spare = Part()
    def __init__(self):
        self.part = Part()
holder = Holder()
loose = Part()
bag = [Part()]
""", mod.__dict__)
    sys.modules["fh_meta"] = mod
    try:
        tracker = snapshot.StateTracker(tmp_path)
        before = tracker.snapshot()
        mod.holder.part.size = 2
        mod.loose.size = 3
        mod.Holder.spare.size = 4
        mod.bag.append(mod.Part())
        changes = {c["what"]: c for c in snapshot.diff(before, tracker.snapshot())}
    finally:
        del sys.modules["fh_meta"]
    assert changes["fh_meta.holder.part.size"]["after"] == "2"
    assert changes["fh_meta.loose.size"]["after"] == "3"
    assert changes["fh_meta.Holder.spare.size"]["after"] == "4"
    assert changes["fh_meta.bag"]["after"] == "2 entries"


def test_a_snapshot_that_raised_leaves_no_memo_behind(tmp_path):
    mod = types.ModuleType("fh_raises")
    mod.__file__ = str(tmp_path / "fh_raises.py")
    exec("""
import argparse
class Loud(int):
    def __repr__(self):
        raise RuntimeError("no repr")
class Inner:
    pass
class Outer:
    def __init__(self):
        self.inner = Inner()
        self.lib = argparse.Namespace(x=1)  # a library object: not looked into
        self.loud = Loud(1)
outer = Outer()
""", mod.__dict__)
    sys.modules["fh_raises"] = mod
    try:
        tracker = snapshot.StateTracker(tmp_path)
        with pytest.raises(RuntimeError):
            tracker.snapshot()  # the recorder guards it; the memo must not outlive it
        assert tracker.project_types  # what it had asked, left over
        # a left-over answer under an id another type may get after the first is freed
        tracker.project_types[id(type(mod.outer.lib))] = True
        del mod.Outer.__init__  # no Loud any more: the next snapshot succeeds
        mod.outer.loud = 1
        taken = tracker.snapshot()
    finally:
        del sys.modules["fh_raises"]
    assert "fh_raises.outer.lib" in taken and "fh_raises.outer.lib.x" not in taken
    assert tracker.project_types == {}


def test_an_empty_tuple_ties_no_fixture_to_a_failure(tmp_path):
    """The empty tuple is one object wherever it appears: a fixture's object holding
    one (``handlers = ()``) is not what a failing frame's ``*args`` holds, while an
    object of its own still ties it."""
    from flakehunt import probes

    class Client:
        def __init__(self):
            self.handlers = ()
            self.pool = [object()]

    client = Client()

    def boom(*args, held=None):
        raise RuntimeError("boom")

    def anatomy(**kwargs):
        try:
            boom(**kwargs)
        except RuntimeError as exc:
            test_code = sys._getframe().f_code  # its locals are never a tie
            return probes.anatomy(exc, {"client": client}, {}, test_code, "t.py::t",
                                  str(tmp_path))["involved"]

    assert owners.shared(()) and owners.shared(None) and not owners.shared([])
    assert anatomy() == {}
    assert anatomy(held=client.pool) == {"client": "`client`.pool is `held` in boom()"}
