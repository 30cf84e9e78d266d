"""A price feed: a pusher task sends ticks on the clock grid while replies are served."""
import anyio

from calibrate import burn


class Feed:
    def __init__(self, period=0.030):
        self.period = period
        self.send, self.receive = anyio.create_memory_object_stream(100)

    async def pusher(self):
        while True:
            now = anyio.current_time()
            await anyio.sleep(self.period - now % self.period)
            await self.send.send("tick")

    async def quote(self, symbol):
        burn(2)
        await anyio.sleep(0.003)
        await self.send.send(f"quote:{symbol}")
        return await self.receive.receive()
