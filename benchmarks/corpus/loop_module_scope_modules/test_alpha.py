import asyncio

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _work():
    await asyncio.sleep(0.001)
    return 1


async def test_two_calls_at_once(limiter):
    results = await asyncio.gather(limiter.call(_work), limiter.call(_work))
    assert results == [1, 1]


async def test_one_call(limiter):
    assert await limiter.call(_work) == 1
