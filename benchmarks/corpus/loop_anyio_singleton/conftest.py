import pytest

from notifier import NOTIFIER


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def notifier():
    return NOTIFIER
