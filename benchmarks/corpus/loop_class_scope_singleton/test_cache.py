import pytest
import pytest_asyncio

from cache import get_client


@pytest_asyncio.fixture(loop_scope="class")
async def cache():
    return await get_client()


@pytest.mark.asyncio(loop_scope="class")
class TestWrites:
    async def test_put_one(self, cache):
        await cache.put("a", 1)
        assert cache.data["a"] == 1

    async def test_put_two(self, cache):
        await cache.put("b", 2)
        assert cache.data["b"] == 2


@pytest.mark.asyncio(loop_scope="class")
class TestReads:
    async def test_put_then_read(self, cache):
        await cache.put("c", 3)
        assert cache.data.get("c") == 3


class TestPlain:
    def test_nothing_async(self):
        assert True
