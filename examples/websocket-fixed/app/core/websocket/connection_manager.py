"""Connection bookkeeping for the ``/ws/{user_id}`` endpoint.

One module-level ``connection_manager`` instance is shared by the whole
process (the endpoint imports it, and so do the tests).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol


class WebSocketLike(Protocol):
    async def accept(self) -> None: ...

    async def send_json(self, data: Any) -> None: ...

    async def close(self, code: int = 1000) -> None: ...


class SubscriptionLimitError(Exception):
    """A subscribe request broke one of the subscription limits."""


class UserMismatchError(Exception):
    """A reconnect claimed a different user than the session belongs to."""


class ConnectionManager:
    MAX_TARGETS_PER_REQUEST = 10
    MAX_SUBSCRIPTIONS_PER_USER = 25
    # Simulated latency of the target directory lookup done for every subscribe.
    TARGET_LOOKUP_LATENCY = 0.02

    def __init__(self) -> None:
        self._connections: dict[str, WebSocketLike] = {}
        self._message_queues: dict[str, list[dict[str, Any]]] = {}
        self._subscriptions: dict[str, set[str]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        # No cached event loop: background work goes to the loop that is running
        # when it is scheduled (see _schedule).

    def reset(self) -> None:
        """Forget all connections, queues and subscriptions (used by the tests)."""
        self._connections.clear()
        self._message_queues.clear()
        self._subscriptions.clear()
        self._background.clear()

    # ------------------------------------------------------------------ connections
    async def connect(self, user_id: str, websocket: WebSocketLike, *, accept: bool = True) -> None:
        if accept:
            await websocket.accept()
        self._connections[user_id] = websocket
        await self._deliver_queued(user_id, websocket)

    def disconnect(self, user_id: str) -> None:
        self._connections.pop(user_id, None)
        self._subscriptions.pop(user_id, None)

    async def reconnect(
        self, user_id: str, websocket: WebSocketLike, *, claimed_user_id: str
    ) -> None:
        """Swap in a new socket for an existing session (client came back)."""
        previous = self._connections.get(user_id)
        if claimed_user_id != user_id:
            if previous is not None:
                # Tell the legitimate session, without delaying the rejection.
                self._schedule(
                    self._send_safely,
                    previous,
                    {"type": "security", "event": "reconnect_rejected", "claimed": claimed_user_id},
                )
            raise UserMismatchError(f"session belongs to {user_id!r}, not {claimed_user_id!r}")
        if previous is not None and previous is not websocket:
            self._schedule(self._close_safely, previous)
        self._connections[user_id] = websocket
        await self._deliver_queued(user_id, websocket)

    def is_connected(self, user_id: str) -> bool:
        return user_id in self._connections

    @property
    def active_users(self) -> list[str]:
        return sorted(self._connections)

    # ------------------------------------------------------------------ heartbeat
    async def send_heartbeat(self, user_id: str) -> bool:
        websocket = self._connections.get(user_id)
        if websocket is None:
            return False
        await websocket.send_json({"type": "pong"})
        return True

    async def run_heartbeat(self, websocket: WebSocketLike, interval: float) -> None:
        """Send ``{"type": "pong"}`` every ``interval`` seconds until cancelled.

        Ticks are aligned to the interval grid of the loop clock, so the
        heartbeats of all connections go out together in one batch.
        """
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval - (loop.time() % interval))
            await websocket.send_json({"type": "pong"})

    # ------------------------------------------------------------------ messages
    async def send_personal_message(self, user_id: str, message: dict[str, Any]) -> bool:
        """Deliver now if the user is online, otherwise queue it. Returns True if delivered."""
        websocket = self._connections.get(user_id)
        if websocket is None:
            self.queue_message(user_id, message)
            return False
        await websocket.send_json(message)
        return True

    def queue_message(self, user_id: str, message: dict[str, Any]) -> None:
        self._message_queues.setdefault(user_id, []).append(message)

    async def broadcast(self, message: dict[str, Any]) -> int:
        sent = 0
        for websocket in list(self._connections.values()):
            await websocket.send_json(message)
            sent += 1
        return sent

    async def publish(self, topic: str, message: dict[str, Any]) -> int:
        sent = 0
        for user_id, topics in list(self._subscriptions.items()):
            websocket = self._connections.get(user_id)
            if topic in topics and websocket is not None:
                await websocket.send_json(message)
                sent += 1
        return sent

    async def flush_queues(self) -> int:
        """Deliver queued messages of connected users and drop their queues."""
        delivered = 0
        for user_id in list(self._message_queues):
            websocket = self._connections.get(user_id)
            if websocket is None:
                continue  # keep it until the user comes back
            for message in self._message_queues.pop(user_id):
                await websocket.send_json(message)
                delivered += 1
        return delivered

    async def batch_flush_loop(self, interval: float = 0.5) -> None:
        while True:
            await self.flush_queues()
            await asyncio.sleep(interval)

    async def _deliver_queued(self, user_id: str, websocket: WebSocketLike) -> None:
        for message in self._message_queues.pop(user_id, []):
            await websocket.send_json(message)

    # ------------------------------------------------------------------ subscriptions
    async def subscribe(self, user_id: str, targets: list[str]) -> dict[str, Any]:
        targets = list(dict.fromkeys(targets))
        if len(targets) > self.MAX_TARGETS_PER_REQUEST:
            websocket = self._connections.get(user_id)
            if websocket is not None:
                self._schedule(
                    self._send_safely,
                    websocket,
                    {
                        "type": "error",
                        "code": "too_many_targets",
                        "limit": self.MAX_TARGETS_PER_REQUEST,
                    },
                )
            raise SubscriptionLimitError(
                f"{len(targets)} targets in one request, max is {self.MAX_TARGETS_PER_REQUEST}"
            )
        valid = await self._lookup_targets(targets)
        current = self._subscriptions.setdefault(user_id, set())
        new = [target for target in valid if target not in current]
        room = max(self.MAX_SUBSCRIPTIONS_PER_USER - len(current), 0)
        accepted, rejected = new[:room], new[room:]
        current.update(accepted)
        return {"accepted": accepted, "rejected": rejected, "total": len(current)}

    async def unsubscribe(self, user_id: str, targets: list[str]) -> list[str]:
        current = self._subscriptions.get(user_id, set())
        removed = [target for target in targets if target in current]
        current.difference_update(removed)
        return removed

    def subscriptions_of(self, user_id: str) -> set[str]:
        return set(self._subscriptions.get(user_id, set()))

    async def _lookup_targets(self, targets: list[str]) -> list[str]:
        # Stand-in for a directory service call that checks the targets exist.
        await asyncio.sleep(self.TARGET_LOOKUP_LATENCY)
        return [target for target in targets if isinstance(target, str) and target]

    # ------------------------------------------------------------------ background work
    def _schedule(self, coro_fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Fire-and-forget ``coro_fn(*args)`` on the loop running right now.

        Looked up at call time, never cached: a loop remembered from an earlier
        connection may be closed by now (pytest-asyncio closes one per test).
        """
        loop = asyncio.get_running_loop()
        task = loop.create_task(coro_fn(*args))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @staticmethod
    async def _send_safely(websocket: WebSocketLike, message: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):  # the peer may be gone already
            await websocket.send_json(message)

    @staticmethod
    async def _close_safely(websocket: WebSocketLike) -> None:
        with contextlib.suppress(Exception):
            await websocket.close(code=4000)


connection_manager = ConnectionManager()
