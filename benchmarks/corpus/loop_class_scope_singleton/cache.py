"""A cache client that schedules its expiry callbacks on the loop it was built on."""
import asyncio

_client = None


class CacheClient:
    def __init__(self):
        self.loop = asyncio.get_running_loop()
        self.data = {}

    async def put(self, key, value, ttl=60.0):
        self.data[key] = value
        self.loop.call_later(ttl, self.data.pop, key, None)


async def get_client():
    global _client
    if _client is None:
        _client = CacheClient()
    return _client
