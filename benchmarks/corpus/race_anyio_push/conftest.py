import anyio
import pytest

from feed import Feed


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
async def feed():
    f = Feed()
    async with anyio.create_task_group() as tg:
        tg.start_soon(f.pusher)
        yield f
        tg.cancel_scope.cancel()
