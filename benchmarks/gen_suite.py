"""Generate a realistic pytest suite with seeded flaky tests of every category.

    python3 benchmarks/gen_suite.py DIR [--seed N]

or, from Python, ``generate(path, seed) -> manifest``. The suite (pure pytest +
pytest-asyncio, strict mode, function loop scope) is written into DIR:

    DIR/pytest.ini
    DIR/expected.json        the manifest: {nodeid: {category, fixture, polluter}}
    DIR/gen_app/...          the code under test (a few process-wide singletons)
    DIR/tests/...            ~420 tests in 23 modules; 7 tests flaky on purpose

Every seeded flaky test has a real mechanism, never a coin flip:

- loop-closed: ``PoolClient`` caches the running loop when the first session
  opens and forgets it only when the last one closes; a test that leaves a
  session open leaves a dead loop behind, and the next ``request()`` does
  ``call_soon`` on it ("Event loop is closed"). ``EventBus`` keeps one
  ``asyncio.Queue``; a test that waits on it binds it to its loop and does not
  reset it, so the next wait raises "... is bound to a different event loop".
- state-leak: ``PluginRegistry`` and ``Settings`` singletons handed out by
  fixtures; a polluter changes them and does not restore them, a victim
  asserts the pristine state (one pair across modules, one within a module).
- race: a ``Flusher`` thread moves buffered records to the sink on a 30 ms
  clock grid while the test does 3 ms of CPU work and a 1 ms wait between add
  and check (thread); a ``Channel`` heartbeat task puts a ping on a 50 ms
  loop-clock grid while the server spends 2 ms of CPU and a 2 ms wait on the
  reply the test waits for (asyncio). Both fail when a tick lands in the
  window: about 5-10% of runs on an idle machine (2 cores), several times
  that under a 25% CPU quota, since the CPU work stretches the window.

The same seed gives byte-identical files (the seed picks the stable tests'
values and sizes; the flaky mechanisms are always the same).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from pathlib import Path

PYTEST_INI = """\
[pytest]
pythonpath = .
testpaths = tests
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
asyncio_default_test_loop_scope = function
"""

# ----------------------------------------------------------------------------- the app

APP: dict[str, str] = {}

APP["gen_app/__init__.py"] = '"""Code under test for the generated benchmark suite."""\n'

APP["gen_app/mathutil.py"] = '''\
"""Small number utilities."""


def gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return abs(a)


def isqrt(n: int) -> int:
    if n < 0:
        raise ValueError("negative")
    x = n
    y = (x + 1) // 2
    while y < x:
        x = y
        y = (x + n // x) // 2
    return x


def fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def digit_sum(n: int) -> int:
    return sum(int(c) for c in str(abs(n)))


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    i = 2
    while i * i <= n:
        if n % i == 0:
            return False
        i += 1
    return True


def clamp(x: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, x))
'''

APP["gen_app/textutil.py"] = '''\
"""Small text utilities."""


def count_vowels(s: str) -> int:
    return sum(1 for c in s.lower() if c in "aeiou")


def is_palindrome(s: str) -> bool:
    letters = [c.lower() for c in s if c.isalnum()]
    return letters == letters[::-1]


def normalize_spaces(s: str) -> str:
    return " ".join(s.split())


def caesar(s: str, k: int) -> str:
    out = []
    for c in s:
        if c.isascii() and c.isalpha():
            base = ord("a") if c.islower() else ord("A")
            out.append(chr(base + (ord(c) - base + k) % 26))
        else:
            out.append(c)
    return "".join(out)


def initials(name: str) -> str:
    return "".join(part[0].upper() for part in name.split())
'''

APP["gen_app/inventory.py"] = '''\
"""An in-memory stock list."""

import json
from pathlib import Path


class Inventory:
    def __init__(self) -> None:
        self._items: dict[str, int] = {}

    def add(self, sku: str, qty: int = 1) -> None:
        if qty <= 0:
            raise ValueError("qty must be positive")
        self._items[sku] = self._items.get(sku, 0) + qty

    def remove(self, sku: str, qty: int = 1) -> None:
        have = self._items.get(sku, 0)
        if qty > have:
            raise KeyError(sku)
        if qty == have:
            del self._items[sku]
        else:
            self._items[sku] = have - qty

    def quantity(self, sku: str) -> int:
        return self._items.get(sku, 0)

    def total(self) -> int:
        return sum(self._items.values())

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self._items, sort_keys=True))

    @classmethod
    def load(cls, path: Path) -> "Inventory":
        inv = cls()
        inv._items = json.loads(path.read_text())
        return inv
'''

APP["gen_app/asyncops.py"] = '''\
"""Small asyncio helpers."""

import asyncio


async def double_later(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


async def gather_doubles(xs: list[int]) -> list[int]:
    return list(await asyncio.gather(*(double_later(x) for x in xs)))


async def retry(fn, attempts: int):
    last = None
    for _ in range(attempts):
        try:
            return await fn()
        except ValueError as exc:
            last = exc
            await asyncio.sleep(0)
    raise last
'''

APP["gen_app/pool.py"] = '''\
"""A pooled client shared by the whole process (think HTTP or DB pool)."""

import asyncio


class PoolClient:
    def __init__(self) -> None:
        self._sessions: dict[str, dict] = {}
        # Loop that completions are delivered on, picked up when the first
        # session opens and forgotten when the last one closes.
        self._loop: asyncio.AbstractEventLoop | None = None
        self.requests = 0

    async def open(self, name: str) -> dict:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        session = {"name": name, "open": True}
        self._sessions[name] = session
        return session

    def close(self, name: str) -> None:
        self._sessions.pop(name, None)
        if not self._sessions:
            self._loop = None

    def is_open(self, name: str) -> bool:
        return name in self._sessions

    async def request(self, name: str, payload: dict) -> dict:
        if name not in self._sessions:
            raise KeyError(name)
        done = self._loop.create_future()
        self._loop.call_soon(done.set_result, {"to": name, "echo": payload})
        self.requests += 1
        return await done


CLIENT = PoolClient()
'''

APP["gen_app/bus.py"] = '''\
"""A process-wide event bus."""

import asyncio


class EventBus:
    def __init__(self) -> None:
        self._queue: asyncio.Queue = asyncio.Queue()

    async def publish(self, event: dict) -> None:
        await self._queue.put(event)

    async def next_event(self) -> dict:
        return await self._queue.get()

    def pending(self) -> int:
        return self._queue.qsize()

    def reset(self) -> None:
        self._queue = asyncio.Queue()


BUS = EventBus()
'''

APP["gen_app/registry.py"] = '''\
"""Plugin registry, one per process."""


class PluginRegistry:
    BUILTINS = ("csv", "json")

    def __init__(self) -> None:
        self._plugins = {name: f"builtin:{name}" for name in self.BUILTINS}

    def register(self, name: str, target: str) -> None:
        self._plugins[name] = target

    def unregister(self, name: str) -> None:
        self._plugins.pop(name, None)

    def lookup(self, name: str) -> str:
        return self._plugins[name]

    def names(self) -> list[str]:
        return sorted(self._plugins)


REGISTRY = PluginRegistry()
'''

APP["gen_app/settings.py"] = '''\
"""Runtime settings, one per process."""


class Settings:
    DEFAULTS = {"timeout": 30, "retries": 3, "region": "eu"}

    def __init__(self) -> None:
        self._values = dict(self.DEFAULTS)

    def get(self, key: str):
        return self._values[key]

    def set(self, key: str, value) -> None:
        self._values[key] = value

    def reset(self, key: str) -> None:
        self._values[key] = self.DEFAULTS[key]


SETTINGS = Settings()
'''

APP["gen_app/cpu.py"] = '''\
"""A few milliseconds of pure-Python CPU work, calibrated once per process."""

import time


def _loops_per_ms() -> float:
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        x = 0
        for i in range(20000):
            x += i
        best = min(best, time.perf_counter() - t0)
    return 20000 / (best * 1000)


LOOPS_PER_MS = _loops_per_ms()


def burn(ms: float) -> int:
    x = 0
    for i in range(int(LOOPS_PER_MS * ms)):
        x += i
    return x
'''

APP["gen_app/flusher.py"] = '''\
"""Moves buffered records to the sink in a background thread.

Flushes happen on a fixed grid of the monotonic clock, so every flusher of the
process ticks at the same moments.
"""

import threading
import time


class Flusher:
    def __init__(self, period: float) -> None:
        self.period = period
        self.sink: list = []
        self._buffer: list = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flusher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.period - time.monotonic() % self.period):
            with self._lock:
                self.sink.extend(self._buffer)
                self._buffer.clear()

    def add(self, record) -> None:
        with self._lock:
            self._buffer.append(record)

    def pending(self) -> list:
        with self._lock:
            return list(self._buffer)
'''

APP["gen_app/channel.py"] = '''\
"""A server connection: replies to requests, and pings on the loop-clock grid."""

import asyncio

from gen_app.cpu import burn


class Channel:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.inbox: asyncio.Queue = asyncio.Queue()
        self._tasks: set = set()

    def start(self) -> None:
        self._spawn(self._heartbeat())

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _heartbeat(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.interval - loop.time() % self.interval)
            self.inbox.put_nowait({"type": "ping"})

    async def request(self, payload: dict) -> None:
        async def reply():
            burn(2)  # the server decodes the request
            await asyncio.sleep(0.002)  # and looks something up
            self.inbox.put_nowait({"type": "reply", "echo": payload})

        self._spawn(reply())
'''

CONFTEST = '''\
import pytest
import pytest_asyncio

from gen_app.bus import BUS
from gen_app.channel import Channel
from gen_app.flusher import Flusher
from gen_app.inventory import Inventory
from gen_app.pool import CLIENT
from gen_app.registry import REGISTRY
from gen_app.settings import SETTINGS


@pytest.fixture
def pool():
    """The process-wide pooled client."""
    return CLIENT


@pytest.fixture
def bus():
    """The process-wide event bus."""
    return BUS


@pytest.fixture
def registry():
    """The process-wide plugin registry."""
    return REGISTRY


@pytest.fixture
def settings():
    """The process-wide settings."""
    return SETTINGS


@pytest.fixture
def flusher():
    """A running flusher (30 ms period)."""
    f = Flusher(period=0.03)
    f.start()
    yield f
    f.stop()


@pytest_asyncio.fixture
async def channel():
    """A connected channel with its heartbeat running (50 ms)."""
    ch = Channel(interval=0.05)
    ch.start()
    yield ch
    await ch.stop()


@pytest.fixture
def inventory():
    inv = Inventory()
    inv.add("apple", 3)
    inv.add("pear", 2)
    return inv


@pytest.fixture
def saved_inventory(tmp_path, inventory):
    path = tmp_path / "inventory.json"
    inventory.save(path)
    yield path
    path.unlink()
'''

# ----------------------------------------------------------------------------- seeded flaky modules
# Each is (module path, source, manifest entries with names relative to the module).

FLAKY_MODULES: list[tuple[str, str]] = []

FLAKY_MODULES.append(("tests/test_pool.py", '''\
import pytest


@pytest.mark.asyncio
async def test_open_session_is_tracked(pool):
    await pool.open("alice")
    assert pool.is_open("alice")


@pytest.mark.asyncio
async def test_open_and_close(pool):
    await pool.open("bob")
    pool.close("bob")
    assert not pool.is_open("bob")


def test_close_unknown_is_noop(pool):
    pool.close("nobody")
    assert not pool.is_open("nobody")


@pytest.mark.asyncio
async def test_request_echoes_payload(pool):
    await pool.open("carol")
    try:
        reply = await pool.request("carol", {"n": 1})
    finally:
        pool.close("carol")
    assert reply == {"to": "carol", "echo": {"n": 1}}


@pytest.mark.asyncio
async def test_request_needs_open_session(pool):
    with pytest.raises(KeyError):
        await pool.request("ghost", {})


def test_request_counter_is_int(pool):
    assert isinstance(pool.requests, int)
'''))

FLAKY_MODULES.append(("tests/test_pool_admin.py", '''\
import pytest


@pytest.mark.asyncio
async def test_reopen_keeps_session(pool):
    await pool.open("dave")
    await pool.open("dave")
    assert pool.is_open("dave")


@pytest.mark.asyncio
async def test_bulk_requests_all_answered(pool):
    await pool.open("erin")
    try:
        replies = [await pool.request("erin", {"i": i}) for i in range(3)]
    finally:
        pool.close("erin")
    assert [r["echo"]["i"] for r in replies] == [0, 1, 2]


@pytest.mark.asyncio
async def test_session_record_shape(pool):
    session = await pool.open("frank")
    pool.close("frank")
    assert session == {"name": "frank", "open": True}


def test_pool_has_no_ghosts(pool):
    assert not pool.is_open("ghost")
'''))

FLAKY_MODULES.append(("tests/test_events.py", '''\
import asyncio

import pytest


@pytest.mark.asyncio
async def test_subscriber_gets_published_event(bus):
    async def later():
        await asyncio.sleep(0)
        await bus.publish({"kind": "created"})

    task = asyncio.create_task(later())
    event = await bus.next_event()
    await task
    assert event == {"kind": "created"}


@pytest.mark.asyncio
async def test_publish_then_receive(bus):
    await bus.publish({"kind": "updated"})
    assert await bus.next_event() == {"kind": "updated"}


@pytest.mark.asyncio
async def test_next_event_times_out_when_idle(bus):
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(bus.next_event(), timeout=0.01)
    bus.reset()


def test_bus_starts_drained(bus):
    assert bus.pending() == 0


@pytest.mark.asyncio
async def test_events_keep_order(bus):
    for i in range(3):
        await bus.publish({"i": i})
    assert [(await bus.next_event())["i"] for _ in range(3)] == [0, 1, 2]
'''))

FLAKY_MODULES.append(("tests/test_plugins.py", '''\
def test_register_yaml_plugin(registry):
    registry.register("yaml", "ext:yaml")
    assert registry.lookup("yaml") == "ext:yaml"


def test_register_and_unregister(registry):
    registry.register("toml", "ext:toml")
    registry.unregister("toml")
    assert "toml" not in registry.names()


def test_builtin_lookup(registry):
    assert registry.lookup("csv") == "builtin:csv"


def test_unregister_unknown_is_noop(registry):
    registry.unregister("nothing")
    assert "nothing" not in registry.names()
'''))

FLAKY_MODULES.append(("tests/test_registry.py", '''\
import pytest


def test_only_builtins_registered(registry):
    assert registry.names() == ["csv", "json"]


def test_json_is_builtin(registry):
    assert registry.lookup("json").startswith("builtin:")


def test_unknown_plugin_raises(registry):
    with pytest.raises(KeyError):
        registry.lookup("xml")


class TestRegistryShape:
    def test_builtins_constant(self, registry):
        assert registry.BUILTINS == ("csv", "json")

    def test_names_sorted(self, registry):
        names = registry.names()
        assert names == sorted(names)
'''))

FLAKY_MODULES.append(("tests/test_settings.py", '''\
def test_override_timeout(settings):
    settings.set("timeout", 5)
    assert settings.get("timeout") == 5


def test_default_timeout(settings):
    assert settings.get("timeout") == 30


def test_override_retries_restored(settings):
    settings.set("retries", 9)
    assert settings.get("retries") == 9
    settings.reset("retries")
    assert settings.get("retries") == 3


def test_region_default(settings):
    assert settings.get("region") == "eu"


def test_defaults_are_a_dict(settings):
    assert isinstance(settings.DEFAULTS, dict)
'''))

FLAKY_MODULES.append(("tests/test_flusher.py", '''\
import time

from gen_app.cpu import burn
from gen_app.flusher import Flusher


def test_record_stays_buffered_until_flush(flusher):
    flusher.add({"id": 1})
    burn(3)  # validate the record
    time.sleep(0.001)  # and wait for the validator's ack
    assert flusher.pending() == [{"id": 1}]


def test_flusher_period(flusher):
    assert flusher.period == 0.03


def test_sink_starts_empty(flusher):
    assert isinstance(flusher.sink, list)


def test_unstarted_flusher_keeps_everything():
    idle = Flusher(period=1.0)
    for i in range(5):
        idle.add(i)
    assert idle.pending() == [0, 1, 2, 3, 4]
'''))

FLAKY_MODULES.append(("tests/test_channel.py", '''\
import pytest


@pytest.mark.asyncio
async def test_request_gets_reply_first(channel):
    await channel.request({"q": "status"})
    message = await channel.inbox.get()
    assert message["type"] == "reply"


@pytest.mark.asyncio
async def test_channel_interval(channel):
    assert channel.interval == 0.05


@pytest.mark.asyncio
async def test_inbox_starts_empty_or_pinged(channel):
    assert all(m["type"] == "ping" for m in list(channel.inbox._queue))
'''))

POOL_POLLUTERS = ["tests/test_pool.py::test_open_session_is_tracked",
                  "tests/test_pool_admin.py::test_reopen_keeps_session"]

MANIFEST = {
    "tests/test_pool.py::test_request_echoes_payload":
        {"category": "loop-closed", "fixture": "pool", "polluter": POOL_POLLUTERS},
    "tests/test_pool_admin.py::test_bulk_requests_all_answered":
        {"category": "loop-closed", "fixture": "pool", "polluter": POOL_POLLUTERS},
    "tests/test_events.py::test_next_event_times_out_when_idle":
        {"category": "loop-closed", "fixture": "bus",
         "polluter": ["tests/test_events.py::test_subscriber_gets_published_event"]},
    "tests/test_registry.py::test_only_builtins_registered":
        {"category": "state-leak", "fixture": "registry",
         "polluter": ["tests/test_plugins.py::test_register_yaml_plugin"]},
    "tests/test_settings.py::test_default_timeout":
        {"category": "state-leak", "fixture": "settings",
         "polluter": ["tests/test_settings.py::test_override_timeout"]},
    "tests/test_flusher.py::test_record_stays_buffered_until_flush":
        {"category": "race", "fixture": "flusher", "polluter": None},
    "tests/test_channel.py::test_request_gets_reply_first":
        {"category": "race", "fixture": "channel", "polluter": None},
}

# ----------------------------------------------------------------------------- stable modules

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
         "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo"]
PALINDROMES = ["level", "Never odd or even", "racecar", "A man a plan a canal Panama", "noon"]


def _fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % i for i in range(2, math.isqrt(n) + 1))


def math_module(rng: random.Random) -> str:
    pairs = [(rng.randint(1, 5000), rng.randint(1, 5000)) for _ in range(rng.randint(8, 12))]
    squares = [rng.randint(0, 10**9) for _ in range(rng.randint(6, 10))]
    fibs = [rng.randint(0, 60) for _ in range(rng.randint(5, 8))]
    primes = [rng.randint(2, 2000) for _ in range(rng.randint(6, 10))]
    out = ["import pytest\n\nfrom gen_app import mathutil\n\n"]
    out.append("@pytest.mark.parametrize(\"a, b, expected\", [\n"
               + "".join(f"    ({a}, {b}, {math.gcd(a, b)}),\n" for a, b in pairs) + "])\n"
               "def test_gcd(a, b, expected):\n    assert mathutil.gcd(a, b) == expected\n\n\n")
    out.append("@pytest.mark.parametrize(\"n, expected\", [\n"
               + "".join(f"    ({n}, {math.isqrt(n)}),\n" for n in squares) + "])\n"
               "def test_isqrt(n, expected):\n    assert mathutil.isqrt(n) == expected\n\n\n")
    for i, n in enumerate(fibs):
        out.append(f"def test_fib_{i}():\n"
                   f"    assert mathutil.fib({n}) == {_fib(n)}\n\n\n")
    out.append("@pytest.mark.parametrize(\"n, expected\", [\n"
               + "".join(f"    ({n}, {_is_prime(n)}),\n" for n in primes) + "])\n"
               "def test_is_prime(n, expected):\n    assert mathutil.is_prime(n) is expected\n\n\n")
    n = rng.randint(10**5, 10**9)
    out.append(f"def test_digit_sum():\n    assert mathutil.digit_sum({n}) == "
               f"{sum(map(int, str(n)))}\n\n\n")
    out.append("class TestClamp:\n"
               "    def test_inside(self):\n        assert mathutil.clamp(5, 0, 10) == 5\n\n"
               "    def test_below(self):\n        assert mathutil.clamp(-3, 0, 10) == 0\n\n"
               "    def test_above(self):\n        assert mathutil.clamp(42, 0, 10) == 10\n")
    return "".join(out)


def text_module(rng: random.Random) -> str:
    words = rng.sample(WORDS, rng.randint(8, 12))
    out = ["import pytest\n\nfrom gen_app import textutil\n\n"]
    out.append("@pytest.mark.parametrize(\"word, expected\", [\n"
               + "".join(f"    ({w!r}, {sum(c in 'aeiou' for c in w)}),\n" for w in words)
               + "])\ndef test_count_vowels(word, expected):\n"
               "    assert textutil.count_vowels(word) == expected\n\n\n")
    out.append("@pytest.mark.parametrize(\"text\", [\n"
               + "".join(f"    {p!r},\n" for p in rng.sample(PALINDROMES, 3)) + "])\n"
               "def test_palindromes(text):\n    assert textutil.is_palindrome(text)\n\n\n")
    for w in rng.sample(WORDS, 4):
        k = rng.randint(1, 25)
        out.append(f"def test_caesar_roundtrip_{w}():\n"
                   f"    assert textutil.caesar(textutil.caesar({w!r}, {k}), -{k}) == {w!r}\n\n\n")
    spaced = "  ".join(rng.sample(WORDS, 3))
    out.append(f"def test_normalize_spaces():\n"
               f"    assert textutil.normalize_spaces(' {spaced}  ') == "
               f"{' '.join(spaced.split())!r}\n\n\n")
    name = " ".join(rng.sample(WORDS, 3))
    out.append(f"def test_initials():\n    assert textutil.initials({name!r}) == "
               f"{''.join(p[0].upper() for p in name.split())!r}\n\n\n")
    out.append("class TestNotPalindromes:\n")
    for w in rng.sample(WORDS, 3):
        out.append(f"    def test_{w}(self):\n        assert not textutil.is_palindrome({w!r})\n\n")
    return "".join(out)


def inventory_module(rng: random.Random) -> str:
    out = [("import pytest\n\nfrom gen_app.inventory import Inventory\n\n\n"
           "class TestInventory:\n"
           "    def test_starting_total(self, inventory):\n"
           "        assert inventory.total() == 5\n\n"
           "    def test_remove_all_drops_sku(self, inventory):\n"
           "        inventory.remove('pear', 2)\n        assert inventory.quantity('pear') == 0\n\n"
           "    def test_remove_too_many(self, inventory):\n"
           "        with pytest.raises(KeyError):\n            inventory.remove('apple', 4)\n\n"
           "    def test_add_rejects_zero(self, inventory):\n"
           "        with pytest.raises(ValueError):\n            inventory.add('kiwi', 0)\n\n\n")]
    for i in range(rng.randint(8, 12)):
        sku = rng.choice(WORDS)
        qty = rng.randint(1, 50)
        out.append(f"def test_add_{sku}_{i}(inventory):\n    inventory.add({sku!r}, {qty})\n"
                   f"    assert inventory.quantity({sku!r}) == {qty}\n"
                   f"    assert inventory.total() == {5 + qty}\n\n\n")
    out.append("def test_save_and_load(saved_inventory):\n"
               "    assert Inventory.load(saved_inventory).total() == 5\n\n\n")
    qtys = [rng.randint(1, 9) for _ in range(4)]
    out.append(f"@pytest.mark.parametrize(\"qty\", {qtys})\n"
               "def test_add_then_remove(inventory, qty):\n"
               "    inventory.add('plum', qty)\n    inventory.remove('plum', qty)\n"
               "    assert inventory.total() == 5\n\n\n")
    out.append("def test_file_roundtrip(tmp_path):\n"
               "    inv = Inventory()\n    inv.add('fig', 4)\n    inv.save(tmp_path / 'x.json')\n"
               "    assert Inventory.load(tmp_path / 'x.json').quantity('fig') == 4\n")
    return "".join(out)


def async_module(rng: random.Random) -> str:
    out = ["import asyncio\n\nimport pytest\n\nfrom gen_app import asyncops\n\n\n"]
    for i in range(rng.randint(5, 8)):
        xs = [rng.randint(-100, 100) for _ in range(rng.randint(1, 6))]
        out.append(f"@pytest.mark.asyncio\nasync def test_gather_doubles_{i}():\n"
                   f"    assert await asyncops.gather_doubles({xs}) == {[2 * x for x in xs]}\n\n\n")
    fails = rng.randint(1, 3)
    out.append("@pytest.mark.asyncio\nasync def test_retry_succeeds_eventually():\n"
               "    calls = []\n\n    async def flaky_call():\n        calls.append(1)\n"
               f"        if len(calls) <= {fails}:\n            raise ValueError('not yet')\n"
               "        return 'ok'\n\n"
               f"    assert await asyncops.retry(flaky_call, {fails + 1}) == 'ok'\n\n\n")
    out.append("@pytest.mark.asyncio\nasync def test_retry_gives_up():\n"
               "    async def broken():\n        raise ValueError('no')\n\n"
               "    with pytest.raises(ValueError):\n        await asyncops.retry(broken, 2)\n\n\n")
    n = rng.randint(3, 9)
    out.append("@pytest.mark.asyncio\nasync def test_local_queue_roundtrip():\n"
               "    q = asyncio.Queue()\n"
               f"    for i in range({n}):\n        await q.put(i)\n"
               f"    assert [await q.get() for _ in range({n})] == list(range({n}))\n\n\n")
    out.append("@pytest.mark.asyncio\nasync def test_wait_for_generous_timeout():\n"
               "    assert await asyncio.wait_for(asyncops.double_later(4), timeout=5) == 8\n\n\n")
    out.append("def test_sync_wrapper():\n"
               "    assert asyncio.run(asyncops.double_later(21)) == 42\n")
    return "".join(out)


def generate(path: str | Path, seed: int = 0) -> dict:
    """Write the suite into ``path`` (created if needed) and return the manifest
    {nodeid: {"category", "fixture", "polluter"}}, also written to expected.json."""
    root = Path(path)
    rng = random.Random(seed)
    files: dict[str, str] = {"pytest.ini": PYTEST_INI, "tests/__init__.py": "",
                             "tests/conftest.py": CONFTEST, **APP}
    for i in range(1, 7):
        files[f"tests/test_math_{i}.py"] = math_module(rng)
    for i in range(1, 5):
        files[f"tests/test_text_{i}.py"] = text_module(rng)
    for i in range(1, 4):
        files[f"tests/test_inventory_{i}.py"] = inventory_module(rng)
    for i in range(1, 3):
        files[f"tests/test_async_ops_{i}.py"] = async_module(rng)
    files.update(dict(FLAKY_MODULES))
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    manifest = json.loads(json.dumps(MANIFEST))  # a copy the caller may change
    (root / "expected.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    manifest = generate(args.path, args.seed)
    print(f"wrote {args.path} with {len(manifest)} seeded flaky tests", file=sys.stderr)


if __name__ == "__main__":
    main()
