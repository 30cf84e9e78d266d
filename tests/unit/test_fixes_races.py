"""Patches for races and for a dead event_loop override, and the child's facts they rest
on (what a fixture hands over, where a failing value was read), without a process."""

from __future__ import annotations

import errno
import socket
import tempfile
from pathlib import Path

import pytest

from flakehunt import clusters, patch, racefix, resources
from flakehunt.model import Category, Culprit, Finding, Verdict

T = "tests/test_srv.py::"
PORT = Culprit("port", "tests.test_srv.PORT", "server", "47613")


def race(name: str, culprit: Culprit | None = None) -> Finding:
    return Finding(T + name, Verdict.FLAKY, 20, 15, 5, 0, 0, category=Category.RACE,
                   culprit=culprit, suspected_fixture="server")


def test_races_through_one_shared_port_are_one_cluster_with_a_per_worker_patch():
    [c] = clusters.group([race("test_a", PORT), race("test_b", PORT)])
    assert c.tests == (T + "test_a", T + "test_b") and c.slug == "race-test-srv-port"
    assert c.cause == ("race: every xdist worker uses the same port 47613 "
                       "(tests.test_srv.PORT) (fixture `server`)")
    made = patch.make(c, lambda rel: None)
    assert isinstance(made, patch.Patch) and made.path == "tests/conftest.py"
    assert 'if "server" not in request.fixturenames:' in made.new
    assert 'monkeypatch.setattr(module, "PORT", probe.getsockname()[1])' in made.new
    compile(made.new, "conftest.py", "exec")


@pytest.mark.parametrize("culprit, wanted", [
    (Culprit("path", "tests.test_srv.LOCK", "server", "/r/a.lock"),
     'new = os.path.join(head, f"{stem}-{worker}{ext}")'),
    (Culprit("tmp", "<tmp>/out.csv", "server", "out.csv"),
     'monkeypatch.setattr(tempfile, "tempdir", str(own))'),
])
def test_per_worker_file_patches(culprit, wanted):
    [c] = clusters.group([race("test_a", culprit)])
    made = patch.make(c, lambda rel: None)
    assert isinstance(made, patch.Patch) and wanted in made.new
    compile(made.new, "conftest.py", "exec")


# -- the child's facts ------------------------------------------------------------------------

LOCK = Path("/somewhere/migrate.lock")
FIXED = 47613


def lock_fixture():
    return LOCK


def port_fixture():
    return socket.socket().bind(("127.0.0.1", FIXED))


def test_resource_from_the_value_or_the_setup_error():
    got = resources.resource(lock_fixture, LOCK, None)
    assert got == {"kind": "path", "value": str(LOCK), "global": "LOCK", "module": __name__}
    in_use = OSError(errno.EADDRINUSE, "Address already in use")
    assert resources.resource(port_fixture, None, in_use) == {
        "kind": "port", "value": str(FIXED), "global": "FIXED", "module": __name__}
    shared = Path(tempfile.gettempdir()) / "fixed-name.csv"
    assert resources.resource(lambda: None, shared, None) == {
        "kind": "tmp", "value": "fixed-name.csv", "module": __name__}
    assert resources.resource(lambda: None, shared, None, basetemp=tempfile.gettempdir()) is None
    assert resources.resource(lock_fixture, Path("/elsewhere"), None) is None


def a_test(websocket):
    websocket.send_json({"type": "subscribe"})
    msg = websocket.receive_json()
    assert msg["type"] == "subscribed"


class Stream:
    def send_json(self, data):
        pass

    def receive_json(self):
        return {"type": "pong"}


def test_read_from_names_the_fixture_read_on_the_failing_line():
    with pytest.raises(AssertionError) as info:
        a_test(Stream())
    got = resources.read_from(info.value, a_test.__code__, {"websocket": Stream()})
    assert got is not None
    assert {k: got[k] for k in ("local", "fixture", "call", "key", "first")} == {
        "local": "msg", "fixture": "websocket", "call": "receive_json", "key": "type",
        "first": True}


# -- the timing race's stream -----------------------------------------------------------------

TASK = {"task": "Manager.run_heartbeat", "user": True, "fixture": "websocket",
        "writes": ["type", "pong"]}
READ = {"local": "msg", "fixture": "websocket", "call": "receive_json", "key": "type",
        "line": 3, "first": True}
FAILED = "AssertionError: assert 'pong' == 'subscribed'"


def test_stream_race_needs_all_three_facts():
    got = racefix.stream_race([(FAILED, {"read_from": READ, "tasks_from_fixtures": [TASK]})])
    assert got == racefix.Stream("websocket", "receive_json", "type", ("pong",),
                                 "Manager.run_heartbeat")
    no_task = racefix.stream_race([(FAILED, {"read_from": READ})])
    assert isinstance(no_task, str) and "no task started by `websocket`" in no_task
    not_read = racefix.stream_race([(FAILED, {"tasks_from_fixtures": [TASK]})])
    assert isinstance(not_read, str) and "compares no value the test read" in not_read
    other = racefix.stream_race([("AssertionError: assert 'error' == 'subscribed'",
                                  {"read_from": READ, "tasks_from_fixtures": [TASK]})])
    assert isinstance(other, str) and "not one the pending task" in other


def test_stream_patch_wraps_the_read_for_the_cluster_tests_only():
    [c] = clusters.group([race("test_a")])
    stream = racefix.stream_race([(FAILED, {"read_from": READ, "tasks_from_fixtures": [TASK]})])
    made = patch.make(c, lambda rel: None, patch.Seen(stream=stream))
    assert isinstance(made, patch.Patch)
    assert f'if request.node.nodeid not in (\n        "{T}test_a",\n    ):' in made.new
    assert 'kind = got.get("type") if isinstance(got, dict) else got' in made.new
    assert 'background = ("pong",)' in made.new
    compile(made.new, "conftest.py", "exec")


# -- loop-closed with a dead event_loop override ----------------------------------------------

CONFTEST = '''import asyncio

import pytest


@pytest.fixture(scope="class")
def event_loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="class")
def conn():
    return object()
'''


def test_dead_override_removed_and_tests_share_the_fixture_scope_loop():
    f = Finding("t.py::C::test_a", Verdict.FLAKY, 20, 10, 10, 0, 0,
                category=Category.LOOP_CLOSED, culprit=Culprit("loop-holder", "conn.loop", "conn"))
    [c] = clusters.group([f])
    seen = patch.Seen(dead_event_loop=("conftest.py:6 (class-scoped)",), fixture_scope="class")
    made = patch.make(c, lambda rel: CONFTEST if rel == "conftest.py" else None, seen)
    assert isinstance(made, patch.Patch)
    assert "def event_loop(" not in made.new and "def conn():" in made.new
    assert 'item.add_marker(pytest.mark.asyncio(loop_scope="class"), append=False)' in made.new
    compile(made.new, "conftest.py", "exec")
    narrow = patch.Seen(dead_event_loop=seen.dead_event_loop, fixture_scope="function")
    assert "no loop scope to share" in patch.loop_scope_patch(c, "conftest.py", CONFTEST, narrow)
    holder_reset = patch.make(c, lambda rel: None, narrow)  # the other branch
    assert isinstance(holder_reset, patch.Patch) and "drop_dead_loop" in holder_reset.new
    elsewhere = patch.Seen(dead_event_loop=("other/conftest.py:6 (class-scoped)",),
                           fixture_scope="class")
    assert "drop_dead_loop" in patch.make(c, lambda rel: None, elsewhere).new
