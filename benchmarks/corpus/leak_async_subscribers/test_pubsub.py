import pytest


@pytest.mark.asyncio
async def test_subscribe_alice(broker):
    await broker.subscribe("news", "alice")
    assert await broker.fanout("news") >= 1


@pytest.mark.asyncio
async def test_fanout_to_nobody(broker):
    assert await broker.fanout("news") == 0


@pytest.mark.asyncio
async def test_other_topic(broker):
    assert await broker.fanout("sports") == 0
