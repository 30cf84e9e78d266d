import time

import pytest
from fastapi.testclient import TestClient

from service import SENT, app


@pytest.fixture
def client():
    SENT.clear()
    with TestClient(app) as c:
        yield c


def test_invite_sends_mail(client):
    assert client.post("/invite/ann").json() == {"queued": "ann"}
    time.sleep(0.003)
    assert "ann" in SENT


def test_invite_answers(client):
    assert client.post("/invite/bob").status_code == 200
