import asyncio

import pytest

from conn import Connection


@pytest.fixture(scope="class")
def event_loop():
    """Meant to share one loop per class (removed in pytest-asyncio 1.0: does nothing)."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="class")
def conn():
    return Connection()
