import pytest
import pytest_asyncio

from channel import Channel


@pytest_asyncio.fixture
async def channel():
    ch = Channel(period=0.040)
    await ch.start()
    yield ch
    await ch.close()


@pytest.mark.asyncio
async def test_subscribe_is_acked(channel):
    assert await channel.request("subscribe") == "ack:subscribe"


@pytest.mark.asyncio
async def test_channel_has_inbox(channel):
    assert channel.inbox.empty()


def test_period_is_positive():
    assert Channel(0.01).period > 0
