import time

import pytest

import server


@pytest.fixture
def helper(tmp_path):
    ready = tmp_path / "ready"
    proc = server.start(ready)
    yield ready
    proc.wait(10)


def test_helper_ready_in_time(helper):
    time.sleep(0.045)
    assert helper.exists()


def test_helper_eventually_ready(helper):
    deadline = time.monotonic() + 10
    while not helper.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert helper.exists()
