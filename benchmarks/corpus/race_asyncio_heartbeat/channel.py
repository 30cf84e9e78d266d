"""A channel whose server sends a heartbeat on a fixed clock beside the replies."""
import asyncio

from calibrate import burn


class Channel:
    def __init__(self, period):
        self.period = period
        self.inbox = asyncio.Queue()
        self._beat = None

    async def start(self):
        self._beat = asyncio.create_task(self._heartbeat())

    async def _heartbeat(self):
        loop = asyncio.get_running_loop()
        while True:  # ticks on the loop clock's grid, like a server's wall-clock timer
            now = loop.time()
            await asyncio.sleep(self.period - now % self.period)
            await self.inbox.put("ping")

    async def request(self, what):
        burn(2)                      # the server's work
        await asyncio.sleep(0.004)   # and its I/O
        await self.inbox.put(f"ack:{what}")
        return await self.inbox.get()

    async def close(self):
        self._beat.cancel()
