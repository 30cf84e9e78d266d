import asyncio

import pytest

from bus import Bus


@pytest.fixture(scope="module")
def bus():
    return Bus()


async def _later(bus, item):
    await asyncio.sleep(0.001)
    await bus.publish(item)


@pytest.mark.asyncio
async def test_receives_published(bus):
    task = asyncio.create_task(_later(bus, "a"))
    assert await bus.next() == "a"
    await task


@pytest.mark.asyncio
async def test_receives_in_order(bus):
    task = asyncio.create_task(_later(bus, "b"))
    assert await bus.next() == "b"
    await task


@pytest.mark.asyncio
async def test_publish_without_waiting(bus):
    await bus.publish("x")
    assert bus.queue.get_nowait() == "x"


def test_bus_starts_empty():
    assert Bus().queue.empty()
