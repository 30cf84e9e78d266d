import asyncio

import pytest

import client

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_call(shared):
    assert await shared.call(2) == 4


async def test_call_concurrent(shared):
    assert await asyncio.gather(shared.call(1), shared.call(3)) == [2, 6]


async def test_register():
    client.REGISTRY.append("a")
    assert client.REGISTRY == ["a"]


async def test_registry_empty():
    assert client.REGISTRY == []


async def test_event_wait_not_sleep():
    ev = asyncio.Event()
    asyncio.get_running_loop().call_soon(ev.set)
    await asyncio.wait_for(ev.wait(), 5)
