import socket
import time

import pytest

PORT = 47613  # fixed: two workers cannot both listen


@pytest.fixture
def server():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", PORT))
    s.listen()
    yield s
    s.close()


def _roundtrip(server):
    c = socket.create_connection(("127.0.0.1", PORT))
    conn, _ = server.accept()
    c.sendall(b"ping")
    data = conn.recv(4)
    time.sleep(0.15)
    conn.close()
    c.close()
    return data


def test_ping(server):
    assert _roundtrip(server) == b"ping"


def test_port_number():
    assert 1024 < PORT < 65536


def test_ping_again(server):
    assert _roundtrip(server) == b"ping"


def test_localhost():
    assert socket.gethostbyname("127.0.0.1") == "127.0.0.1"
