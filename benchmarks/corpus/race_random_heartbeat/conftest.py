import asyncio

import pytest_asyncio

from link import Link


@pytest_asyncio.fixture
async def link():
    lk = Link()
    beat = asyncio.create_task(lk.heartbeat())
    yield lk
    beat.cancel()
