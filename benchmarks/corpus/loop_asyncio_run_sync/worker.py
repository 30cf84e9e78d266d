"""A job queue created lazily inside the first asyncio.run() that uses it."""
import asyncio


class Jobs:
    def __init__(self):
        self.queue = None

    async def run(self, n):
        if self.queue is None:
            self.queue = asyncio.Queue()

        async def produce():
            await asyncio.sleep(0.001)
            for i in range(n):
                await self.queue.put(i)

        task = asyncio.create_task(produce())
        got = [await self.queue.get() for _ in range(n)]
        await task
        return got


JOBS = Jobs()
