"""What the child records for the fix of a race (flakehunt/resources.py, probes): the
resource a fixture hands over, where the failing line's value was read, and what a
fixture's pending task may write. One pytester run, no flakiness: the failure is fixed."""

from __future__ import annotations

import json

import pytest
from helpers import make_suite

pytestmark = pytest.mark.usefixtures("keep_random_state")

SUITE = {
    "test_facts": """
        import asyncio
        import socket
        from pathlib import Path

        import pytest

        LOCK = Path(__file__).parent / "fixed.lock"


        @pytest.fixture
        def lock_path():
            return LOCK


        @pytest.fixture
        def server():
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            yield s
            s.close()


        async def beat(queue):
            while True:
                await queue.put({"type": "pong"})
                await asyncio.sleep(0)


        class Stream:
            def __init__(self, loop):
                self.loop, self.queue = loop, asyncio.Queue()
                self.task = loop.create_task(beat(self.queue))

            def receive_json(self):
                self.loop.run_until_complete(asyncio.sleep(0.01))
                return self.queue.get_nowait()


        @pytest.fixture
        def stream():
            loop = asyncio.new_event_loop()
            stream = Stream(loop)
            yield stream
            stream.task.cancel()
            loop.run_until_complete(asyncio.gather(stream.task, return_exceptions=True))
            loop.close()


        def test_lock(lock_path, server):
            assert lock_path.name == "fixed.lock"


        def test_first_read(stream):
            msg = stream.receive_json()
            assert msg["type"] == "subscribed"
        """,
}


def test_child_records_resource_read_and_task_writes(pytester):
    make_suite(pytester, **SUITE)
    out = pytester.path / "out"
    pytester.runpytest(f"--flakehunt-out={out}").assert_outcomes(passed=1, failed=1)
    ends = {r["id"].split("::")[-1]: r for r in map(json.loads,
            (out / "events-main.jsonl").read_text().splitlines()) if r["e"] == "end"}
    fixtures = {f["name"]: f for f in ends["test_lock"]["fixtures"]}
    assert fixtures["lock_path"]["resource"] == {
        "kind": "path", "value": str(pytester.path / "fixed.lock"), "global": "LOCK",
        "module": "test_facts"}
    assert "resource" not in fixtures["server"]  # port 0: nothing shared
    [failure] = ends["test_first_read"]["failures"]
    read = failure["read_from"]
    assert (read["local"], read["fixture"], read["call"], read["key"], read["first"]) == (
        "msg", "stream", "receive_json", "type", True)
    [task] = failure["tasks_from_fixtures"]
    assert task["fixture"] == "stream" and "pong" in task["writes"]
