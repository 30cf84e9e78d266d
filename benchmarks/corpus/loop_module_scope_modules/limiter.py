"""A rate limiter whose lock is created lazily and kept for the process."""
import asyncio


class Limiter:
    def __init__(self):
        self._sem = None
        self.calls = 0

    async def call(self, coro_fn):
        if self._sem is None:
            self._sem = asyncio.Semaphore(1)
        async with self._sem:
            self.calls += 1
            return await coro_fn()


LIMITER = Limiter()
