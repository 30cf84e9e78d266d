"""A connection that keeps the loop it was opened on for its reader callbacks."""
import asyncio


class Connection:
    def __init__(self):
        self.loop = None
        self.received = []

    async def open(self):
        if self.loop is None:
            self.loop = asyncio.get_running_loop()

    async def request(self, payload):
        await self.open()
        done = self.loop.create_future()
        self.loop.call_soon(done.set_result, payload.upper())
        return await done
