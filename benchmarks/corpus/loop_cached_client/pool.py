"""A connection pool that remembers the loop it first connected on."""
import asyncio


class Pool:
    def __init__(self):
        self._loop = None
        self.sent = []

    async def connect(self):
        if self._loop is None:
            self._loop = asyncio.get_running_loop()

    async def send(self, msg):
        await self.connect()
        fut = self._loop.create_future()
        self._loop.call_soon(fut.set_result, msg)
        self.sent.append(await fut)
        return msg


POOL = Pool()
