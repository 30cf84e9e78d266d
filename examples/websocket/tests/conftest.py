import pytest
from app.core.websocket.connection_manager import connection_manager
from app.main import app
from fastapi.testclient import TestClient

# Heartbeat used by the shared ``websocket`` fixture: short, so the heartbeat
# tests do not have to wait 30 s for a keep-alive.
FIXTURE_HEARTBEAT_INTERVAL = 0.1
FIXTURE_USER = "ws-fixture-user"


@pytest.fixture
def manager():
    """The process-wide ConnectionManager the endpoint uses."""
    return connection_manager


@pytest.fixture
def client():
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def websocket(client):
    """An open session for FIXTURE_USER (its heartbeat starts right here)."""
    with client.websocket_connect(
        f"/ws/{FIXTURE_USER}?heartbeat_interval={FIXTURE_HEARTBEAT_INTERVAL}"
    ) as ws:
        yield ws
