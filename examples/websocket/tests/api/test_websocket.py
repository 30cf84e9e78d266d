import asyncio
import contextlib

import pytest
from app.core.websocket.connection_manager import (
    ConnectionManager,
    SubscriptionLimitError,
    UserMismatchError,
)

# User of the shared ``websocket`` fixture (see conftest.py).
WS_FIXTURE_USER = "ws-fixture-user"


class FakeWebSocket:
    """Just enough of starlette's WebSocket for direct ConnectionManager tests."""

    def __init__(self):
        self.accepted = False
        self.closed_with = None
        self.sent = []

    async def accept(self):
        self.accepted = True

    async def send_json(self, data):
        self.sent.append(data)

    async def close(self, code=1000):
        self.closed_with = code


async def wait_until(predicate, timeout=1.0):
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.001)


class TestConnectionBasics:
    @pytest.mark.asyncio
    async def test_connect_accepts_websocket(self, manager):
        ws = FakeWebSocket()
        await manager.connect("basics-ann", ws)
        assert ws.accepted
        assert manager.is_connected("basics-ann")

    @pytest.mark.asyncio
    async def test_disconnect_removes_connection(self, manager):
        ws = FakeWebSocket()
        await manager.connect("basics-bob", ws)
        manager.disconnect("basics-bob")
        assert not manager.is_connected("basics-bob")
        assert "basics-bob" not in manager.active_users

    def test_disconnect_unknown_user_is_noop(self, manager):
        manager.disconnect("basics-nobody")
        assert not manager.is_connected("basics-nobody")

    def test_endpoint_ping_pong(self, client):
        with client.websocket_connect("/ws/basics-ping") as ws:
            ws.send_json({"type": "ping"})
            assert ws.receive_json() == {"type": "pong"}

    def test_endpoint_unknown_message_type(self, client):
        with client.websocket_connect("/ws/basics-unknown") as ws:
            ws.send_json({"type": "dance"})
            msg = ws.receive_json()
            assert msg["type"] == "error"
            assert "dance" in msg["detail"]

    def test_endpoint_registers_connection(self, client, manager):
        with client.websocket_connect("/ws/basics-endpoint") as ws:
            ws.send_json({"type": "ping"})
            ws.receive_json()
            assert manager.is_connected("basics-endpoint")
        assert not manager.is_connected("basics-endpoint")


class TestMessageQueue:
    @pytest.mark.asyncio
    async def test_personal_message_delivered_when_online(self, manager):
        ws = FakeWebSocket()
        await manager.connect("queue-online", ws)
        delivered = await manager.send_personal_message("queue-online", {"type": "note", "n": 1})
        assert delivered is True
        assert ws.sent == [{"type": "note", "n": 1}]
        assert "queue-online" not in manager._message_queues
        manager.disconnect("queue-online")

    @pytest.mark.asyncio
    async def test_offline_messages_are_queued(self, manager):
        for n in range(3):
            delivered = await manager.send_personal_message(
                "queue-offline", {"type": "note", "n": n}
            )
            assert delivered is False
        assert [m["n"] for m in manager._message_queues["queue-offline"]] == [0, 1, 2]

    @pytest.mark.asyncio
    async def test_queued_messages_delivered_on_connect(self, manager):
        manager.queue_message("queue-late", {"type": "note", "n": 1})
        manager.queue_message("queue-late", {"type": "note", "n": 2})
        ws = FakeWebSocket()
        await manager.connect("queue-late", ws)
        assert [m["n"] for m in ws.sent] == [1, 2]
        assert "queue-late" not in manager._message_queues
        manager.disconnect("queue-late")

    def test_endpoint_direct_message(self, client):
        with (
            client.websocket_connect("/ws/queue-sender") as sender,
            client.websocket_connect("/ws/queue-receiver") as receiver,
        ):
            sender.send_json({"type": "message", "to": "queue-receiver", "data": "hi"})
            assert sender.receive_json() == {"type": "sent", "delivered": True}
            assert receiver.receive_json() == {
                "type": "message",
                "from": "queue-sender",
                "data": "hi",
            }


class TestWebSocketPhase3:
    @pytest.fixture(scope="class")
    def event_loop(self):
        """Share one event loop across the class, so the manager's loop stays open.

        (This is the "fix" from the original bug report.)
        """
        loop = asyncio.new_event_loop()
        yield loop
        loop.close()

    @pytest.mark.asyncio
    async def test_heartbeat_reaches_connected_user(self, manager):
        ws = FakeWebSocket()
        await manager.connect("phase3-hb", ws)
        assert await manager.send_heartbeat("phase3-hb") is True
        assert ws.sent == [{"type": "pong"}]

    @pytest.mark.asyncio
    async def test_heartbeat_for_offline_user(self, manager):
        assert await manager.send_heartbeat("phase3-ghost") is False

    def test_ping_over_fixture_session(self, websocket):
        websocket.send_json({"type": "ping"})
        assert websocket.receive_json() == {"type": "pong"}

    def test_server_heartbeat_is_periodic(self, websocket):
        # No traffic from the client: the server keeps the session alive by itself.
        assert websocket.receive_json() == {"type": "pong"}
        assert websocket.receive_json() == {"type": "pong"}

    @pytest.mark.asyncio
    async def test_reconnect_with_user_mismatch(self, manager):
        original, intruder = FakeWebSocket(), FakeWebSocket()
        await manager.connect("phase3-alice", original)
        with pytest.raises(UserMismatchError):
            await manager.reconnect("phase3-alice", intruder, claimed_user_id="phase3-mallory")
        await wait_until(lambda: original.sent)
        assert original.sent[-1] == {
            "type": "security",
            "event": "reconnect_rejected",
            "claimed": "phase3-mallory",
        }
        assert manager._connections["phase3-alice"] is original
        manager.disconnect("phase3-alice")


class TestWebSocketSubscriptionLimits:
    def test_limit_constants(self):
        assert ConnectionManager.MAX_TARGETS_PER_REQUEST == 10
        assert ConnectionManager.MAX_SUBSCRIPTIONS_PER_USER == 25

    @pytest.mark.asyncio
    async def test_subscribe_within_limits(self, manager):
        ws = FakeWebSocket()
        await manager.connect("limits-ok", ws)
        result = await manager.subscribe("limits-ok", [f"room-{i}" for i in range(5)])
        assert result == {
            "accepted": [f"room-{i}" for i in range(5)],
            "rejected": [],
            "total": 5,
        }
        assert manager.subscriptions_of("limits-ok") == {f"room-{i}" for i in range(5)}
        manager.disconnect("limits-ok")

    @pytest.mark.asyncio
    async def test_subscribe_deduplicates_targets(self, manager):
        ws = FakeWebSocket()
        await manager.connect("limits-dup", ws)
        result = await manager.subscribe("limits-dup", ["a", "b", "a", "b", "c"])
        assert result["accepted"] == ["a", "b", "c"]
        again = await manager.subscribe("limits-dup", ["a", "d"])
        assert again["accepted"] == ["d"]
        assert again["total"] == 4
        manager.disconnect("limits-dup")

    @pytest.mark.asyncio
    async def test_unsubscribe(self, manager):
        ws = FakeWebSocket()
        await manager.connect("limits-unsub", ws)
        await manager.subscribe("limits-unsub", ["x", "y"])
        assert await manager.unsubscribe("limits-unsub", ["x", "nope"]) == ["x"]
        assert manager.subscriptions_of("limits-unsub") == {"y"}
        manager.disconnect("limits-unsub")

    @pytest.mark.asyncio
    async def test_subscribe_too_many_targets(self, manager):
        ws = FakeWebSocket()
        await manager.connect("limits-greedy", ws)
        targets = [f"room-{i}" for i in range(manager.MAX_TARGETS_PER_REQUEST + 1)]
        with pytest.raises(SubscriptionLimitError):
            await manager.subscribe("limits-greedy", targets)
        await wait_until(lambda: ws.sent)
        assert ws.sent[-1]["code"] == "too_many_targets"
        assert manager.subscriptions_of("limits-greedy") == set()
        manager.disconnect("limits-greedy")

    def test_subscribe_exceeds_total_limit(self, manager, websocket):
        # The fixture user already follows 20 targets; 8 more only fit partially.
        manager._subscriptions[WS_FIXTURE_USER] = {f"seed-{i}" for i in range(20)}
        websocket.send_json({"type": "subscribe", "targets": [f"extra-{i}" for i in range(8)]})
        msg = websocket.receive_json()
        assert msg["type"] == "subscribed"
        assert msg["accepted"] == [f"extra-{i}" for i in range(5)]
        assert msg["rejected"] == ["extra-5", "extra-6", "extra-7"]
        assert msg["total"] == manager.MAX_SUBSCRIPTIONS_PER_USER

    def test_endpoint_subscribe_and_unsubscribe(self, client, manager):
        with client.websocket_connect("/ws/limits-endpoint") as ws:
            ws.send_json({"type": "subscribe", "targets": ["news", "sport"]})
            msg = ws.receive_json()
            assert msg["type"] == "subscribed"
            assert msg["accepted"] == ["news", "sport"]
            ws.send_json({"type": "unsubscribe", "targets": ["news"]})
            assert ws.receive_json() == {"type": "unsubscribed", "targets": ["news"]}
            assert manager.subscriptions_of("limits-endpoint") == {"sport"}


class TestPhase4Features:
    @pytest.mark.asyncio
    async def test_batch_flush_loop(self, manager):
        ws = FakeWebSocket()
        await manager.connect("p4-batch", ws)
        manager.queue_message("p4-batch", {"type": "digest", "n": 1})
        manager.queue_message("p4-batch", {"type": "digest", "n": 2})
        flusher = asyncio.create_task(manager.batch_flush_loop(interval=0.01))
        try:
            await wait_until(lambda: len(ws.sent) == 2)
        finally:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
        manager.disconnect("p4-batch")
        assert [m["n"] for m in ws.sent] == [1, 2]
        pending = sum(len(queue) for queue in manager._message_queues.values())
        assert pending == 0

    @pytest.mark.asyncio
    async def test_flush_keeps_queue_of_offline_user(self, manager):
        ws = FakeWebSocket()
        await manager.connect("p4-online", ws)
        manager.queue_message("p4-online", {"type": "digest"})
        manager.queue_message("p4-away", {"type": "digest"})
        try:
            delivered = await manager.flush_queues()
            assert delivered >= 1
            assert ws.sent == [{"type": "digest"}]
            assert manager._message_queues["p4-away"] == [{"type": "digest"}]
        finally:
            manager._message_queues.pop("p4-away", None)
            manager.disconnect("p4-online")

    @pytest.mark.asyncio
    async def test_broadcast_reaches_all_connected(self, manager):
        first, second = FakeWebSocket(), FakeWebSocket()
        await manager.connect("p4-first", first)
        await manager.connect("p4-second", second)
        sent = await manager.broadcast({"type": "announcement"})
        assert sent >= 2
        assert first.sent == [{"type": "announcement"}]
        assert second.sent == [{"type": "announcement"}]
        manager.disconnect("p4-first")
        manager.disconnect("p4-second")

    @pytest.mark.asyncio
    async def test_publish_reaches_topic_subscribers(self, manager):
        fan, other = FakeWebSocket(), FakeWebSocket()
        await manager.connect("p4-fan", fan)
        await manager.connect("p4-other", other)
        await manager.subscribe("p4-fan", ["p4-match"])
        assert await manager.publish("p4-match", {"type": "goal"}) == 1
        assert fan.sent == [{"type": "goal"}]
        assert other.sent == []

    def test_endpoint_publish(self, client):
        with client.websocket_connect("/ws/p4-listener") as listener:
            listener.send_json({"type": "subscribe", "targets": ["p4-live"]})
            assert listener.receive_json()["type"] == "subscribed"
            with client.websocket_connect("/ws/p4-speaker") as speaker:
                speaker.send_json({"type": "publish", "topic": "p4-live", "data": "hello"})
                assert speaker.receive_json() == {"type": "published", "delivered": 1}
            assert listener.receive_json() == {
                "type": "event",
                "topic": "p4-live",
                "from": "p4-speaker",
                "data": "hello",
            }
