import pytest
from fastapi.testclient import TestClient

from service import app


@pytest.fixture
def client():
    with TestClient(app) as c:
        yield c


def test_post_login(client):
    assert client.post("/events/login").status_code == 200


def test_post_logout(client):
    r = client.post("/events/logout")
    assert r.status_code == 200 and r.json()["count"] >= 1


def test_health(client):
    assert client.get("/health").json() == {"ok": True}
