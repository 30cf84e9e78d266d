import pytest
import pytest_asyncio

import client


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared():
    return client.Client()


@pytest.fixture(autouse=True)
def clean_registry():
    yield
    client.REGISTRY.clear()
