import pytest
import pytest_asyncio

from api import get_client


@pytest_asyncio.fixture
async def api():
    return get_client()


@pytest.mark.asyncio
async def test_fetch_users(api):
    assert await api.fetch("users") == "http://api/users"


@pytest.mark.asyncio
async def test_fetch_items(api):
    assert await api.fetch("items") == "http://api/items"


@pytest.mark.asyncio
async def test_base_url(api):
    assert api.base == "http://api"
