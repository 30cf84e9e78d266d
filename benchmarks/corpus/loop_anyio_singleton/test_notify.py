import anyio
import pytest


@pytest.mark.anyio
async def test_notify_created(notifier):
    notifier.notify_soon("created")
    await anyio.sleep(0.001)
    assert "created" in notifier.seen


@pytest.mark.anyio
async def test_notify_deleted(notifier):
    notifier.notify_soon("deleted")
    await anyio.sleep(0.001)
    assert "deleted" in notifier.seen


@pytest.mark.anyio
async def test_sleep_only():
    await anyio.sleep(0)
