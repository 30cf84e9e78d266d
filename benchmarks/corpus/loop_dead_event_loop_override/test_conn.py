import pytest


@pytest.mark.asyncio
class TestRequests:
    async def test_get(self, conn):
        assert await conn.request("get") == "GET"

    async def test_post(self, conn):
        assert await conn.request("post") == "POST"


def test_connection_starts_closed():
    from conn import Connection
    assert Connection().loop is None
