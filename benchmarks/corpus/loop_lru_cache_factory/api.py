"""An API client whose blocking calls go to the executor of the loop it was made on."""
import asyncio
import functools


class ApiClient:
    def __init__(self, base):
        self.base = base
        self.loop = asyncio.get_running_loop()

    async def fetch(self, path):
        return await self.loop.run_in_executor(None, lambda: f"{self.base}/{path}")


@functools.lru_cache(maxsize=None)
def get_client(base="http://api"):
    return ApiClient(base)
