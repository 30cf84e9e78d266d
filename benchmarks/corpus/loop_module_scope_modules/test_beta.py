import asyncio

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _work():
    await asyncio.sleep(0.001)
    return 2


async def test_contended_calls(limiter):
    results = await asyncio.gather(*(limiter.call(_work) for _ in range(3)))
    assert results == [2, 2, 2]


async def test_counter_moves(limiter):
    before = limiter.calls
    await limiter.call(_work)
    assert limiter.calls == before + 1
