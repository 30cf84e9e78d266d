import pytest


@pytest.mark.asyncio
async def test_connect_then_send(pool):
    await pool.connect()
    assert await pool.send("hello") == "hello"


@pytest.mark.asyncio
async def test_send_batch(pool):
    for i in range(3):
        assert await pool.send(i) == i


def test_pool_is_shared(pool):
    from pool import POOL
    assert pool is POOL


@pytest.mark.asyncio
async def test_plain_sleep():
    import asyncio
    await asyncio.sleep(0)
