"""A session store that keeps a lock created on first contention (binds a loop)."""
import asyncio


class Store:
    def __init__(self):
        self.lock = asyncio.Lock()
        self.items = {}

    async def set(self, key, value):
        async with self.lock:
            await asyncio.sleep(0)
            self.items[key] = value


STORE = Store()
