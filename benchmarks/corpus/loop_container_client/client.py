"""A client that remembers the event loop it first ran on."""
import asyncio


class Client:
    def __init__(self):
        self._loop = None

    async def send(self, message):
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        done = self._loop.create_future()
        self._loop.call_soon(done.set_result, message)
        return await done
