"""FastAPI app with one WebSocket endpoint: ``/ws/{user_id}``.

Client -> server messages (JSON):
    {"type": "ping"}                                  -> {"type": "pong"}
    {"type": "subscribe", "targets": [...]}           -> {"type": "subscribed", ...}
    {"type": "unsubscribe", "targets": [...]}         -> {"type": "unsubscribed", ...}
    {"type": "publish", "topic": t, "data": ...}      -> {"type": "published", ...}
    {"type": "message", "to": user, "data": ...}      -> {"type": "sent", ...}

Clients that pass ``?heartbeat_interval=<seconds>`` also get a server-side
keep-alive: {"type": "pong"} every ``heartbeat_interval`` seconds, on top of
the replies to their own requests.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Query, WebSocket, WebSocketDisconnect

from app.core.websocket.connection_manager import SubscriptionLimitError, connection_manager

app = FastAPI(title="flakehunt websocket example")


@app.get("/health")
async def health() -> dict[str, Any]:
    return {"status": "ok", "connections": len(connection_manager.active_users)}


async def handle_message(user_id: str, websocket: WebSocket, data: dict[str, Any]) -> None:
    kind = data.get("type")
    if kind == "ping":
        await websocket.send_json({"type": "pong"})
    elif kind == "subscribe":
        try:
            result = await connection_manager.subscribe(user_id, list(data.get("targets", [])))
        except SubscriptionLimitError as exc:
            await websocket.send_json({"type": "error", "detail": str(exc)})
            return
        await websocket.send_json({"type": "subscribed", **result})
    elif kind == "unsubscribe":
        removed = await connection_manager.unsubscribe(user_id, list(data.get("targets", [])))
        await websocket.send_json({"type": "unsubscribed", "targets": removed})
    elif kind == "publish":
        event = {
            "type": "event",
            "topic": data.get("topic"),
            "from": user_id,
            "data": data.get("data"),
        }
        delivered = await connection_manager.publish(str(data.get("topic")), event)
        await websocket.send_json({"type": "published", "delivered": delivered})
    elif kind == "message":
        message = {"type": "message", "from": user_id, "data": data.get("data")}
        delivered = await connection_manager.send_personal_message(str(data.get("to")), message)
        await websocket.send_json({"type": "sent", "delivered": delivered})
    else:
        await websocket.send_json({"type": "error", "detail": f"unknown message type {kind!r}"})


@app.websocket("/ws/{user_id}")
async def websocket_endpoint(
    websocket: WebSocket,
    user_id: str,
    heartbeat_interval: float | None = Query(None, ge=0.05, le=300.0),
) -> None:
    await connection_manager.connect(user_id, websocket)
    heartbeat = None
    if heartbeat_interval is not None:
        heartbeat = asyncio.create_task(
            connection_manager.run_heartbeat(websocket, heartbeat_interval)
        )
    try:
        while True:
            data = await websocket.receive_json()
            await handle_message(user_id, websocket, data)
    except WebSocketDisconnect:
        pass
    finally:
        if heartbeat is not None:
            heartbeat.cancel()
        connection_manager.disconnect(user_id)
