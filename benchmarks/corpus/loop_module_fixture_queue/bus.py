"""An event bus whose queue binds to the loop of the first waiter."""
import asyncio


class Bus:
    def __init__(self):
        self.queue = asyncio.Queue()

    async def publish(self, item):
        await self.queue.put(item)

    async def next(self):
        return await asyncio.wait_for(self.queue.get(), 1.0)
