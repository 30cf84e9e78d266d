"""The patches that reset what a test left: an lru_cache cleared, a named logger put
back, a dead loop dropped from a holder reached through a container item, the module
global holding a loop holder put back. The generated fixture is run here as a plain
generator (no pytest process)."""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
import types

import pytest

from flakehunt import clusters, patch
from flakehunt.model import Category, Culprit, Finding, Verdict

T = "tests/test_x.py::"


def cluster(category: Category, culprit: Culprit):
    f = Finding(T + "test_v", Verdict.FLAKY, 30, 20, 10, 0, 0, category=category,
                culprit=culprit, polluter=(T + "test_p",))
    [c] = clusters.group([f])
    return c


def files(*modules: str):
    return lambda rel: "" if rel in {m.replace(".", "/") + ".py" for m in modules} else None


def fixture_of(made: patch.Patch | str):
    """The generated fixture, as the plain generator function it decorates."""
    assert isinstance(made, patch.Patch), made
    fake = types.SimpleNamespace(fixture=lambda **kw: (lambda f: f))
    names: dict[str, object] = {"pytest": fake}
    exec(compile(made.new.replace("import pytest\n", "", 1), "conftest.py", "exec"), names)
    [fn] = [v for k, v in names.items() if k.startswith("_flakehunt_")]
    return fn


def run(gen, test=lambda: None) -> None:
    next(gen)
    test()
    with pytest.raises(StopIteration):
        next(gen)


@pytest.fixture
def module(monkeypatch):
    mod = types.ModuleType("fh_unit_mod")
    monkeypatch.setitem(sys.modules, "fh_unit_mod", mod)
    return mod


def test_lru_cache_cleared_after_each_test(module):
    module.get = functools.lru_cache(maxsize=None)(lambda: object())
    made = patch.make(cluster(Category.STATE_LEAK, Culprit("cache", "fh_unit_mod.get")),
                      files("fh_unit_mod"))
    assert ".cache_clear()" in made.new
    run(fixture_of(made)(), module.get)
    assert module.get.cache_info().currsize == 0


def test_named_logger_put_back_and_level_caches_cleared():
    lg = logging.getLogger("fh.unit.audit")
    child = logging.getLogger("fh.unit.audit.sub")
    made = patch.make(cluster(Category.STATE_LEAK, Culprit("logging", "fh.unit.audit")),
                      files())
    assert "logging.getLogger('fh.unit.audit')" in made.new

    def test() -> None:
        lg.setLevel(logging.ERROR)
        lg.addHandler(logging.NullHandler())
        assert not child.isEnabledFor(logging.WARNING)  # now cached
        lg.level = logging.NOTSET  # a reset that would leave the cache stale

    run(fixture_of(made)(), test)
    assert lg.level == logging.NOTSET and lg.handlers == []
    assert child.isEnabledFor(logging.WARNING)


class Request:
    def __init__(self, **values: object) -> None:
        self.values = values
        self.fixturenames = list(values)

    def getfixturevalue(self, name: str) -> object:
        return self.values[name]


class Client:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None


def test_dead_loop_dropped_from_a_holder_in_a_container_item():
    holder = Culprit("loop-holder", "Client._loop", "registry", via="['client']")
    made = patch.make(cluster(Category.LOOP_CLOSED, holder), files())
    assert "request.getfixturevalue(\"registry\")['client']" in made.new
    registry: dict[str, Client] = {}
    fn = fixture_of(made)

    def test() -> None:  # the first test: the item is made now, on a loop closed after
        client = registry.setdefault("client", Client())
        client._loop = asyncio.new_event_loop()
        client._loop.close()

    run(fn(Request(registry=registry)), test)
    assert registry["client"]._loop is None


@pytest.mark.parametrize("via", ["<closure self>", "['client", "[x]", ".a b", "[1.5]"])
def test_a_path_that_is_not_attributes_and_literal_items_gets_no_patch(via):
    holder = Culprit("loop-holder", "Client._loop", "registry", via=via)
    made = patch.make(cluster(Category.LOOP_CLOSED, holder), files())
    assert isinstance(made, str) and "not an attribute a fixture can reach" in made


def test_loop_holder_in_a_module_global_put_back_after_each_test(module):
    module._client = None
    holder = Culprit("loop-holder", "CacheClient.loop", "cache")
    seen = patch.Seen(leaked=(("id", "fh_unit_mod._client.loop"),
                              ("len", "fh_unit_mod._client.data"),
                              ("env", "fh_unit_mod._client.loop")))
    made = patch.make(cluster(Category.LOOP_CLOSED, holder), files("fh_unit_mod"), seen)
    assert "fh_unit_mod._client is put back" in " ".join(made.new.split())
    client = Client()

    def test() -> None:
        module._client = client

    run(fixture_of(made)(Request(cache=client)), test)
    assert module._client is None


def test_a_reset_that_made_the_test_pass_is_the_loop_fix(module):
    module.get = functools.lru_cache(maxsize=None)(lambda: object())
    holder = Culprit("loop-holder", "ApiClient.loop", "api")
    seen = patch.Seen(reset_passed=("cache", "fh_unit_mod.get"))
    made = patch.make(cluster(Category.LOOP_CLOSED, holder), files("fh_unit_mod"), seen)
    assert "loop-closed:" in made.new and "getfixturevalue" not in made.new
    run(fixture_of(made)(), module.get)
    assert module.get.cache_info().currsize == 0
