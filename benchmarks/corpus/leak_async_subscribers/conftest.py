import pytest_asyncio

from pubsub import BROKER


@pytest_asyncio.fixture
async def broker():
    return BROKER
