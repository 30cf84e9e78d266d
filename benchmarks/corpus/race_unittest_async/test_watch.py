import asyncio
import unittest

from calibrate import burn


class TestWatcher(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.events = []
        self.poller = asyncio.create_task(self.poll())

    async def poll(self):
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(0.030 - loop.time() % 0.030)
            self.events.append("poll")

    async def asyncTearDown(self):
        self.poller.cancel()

    async def test_change_seen_before_poll(self):
        burn(2)
        await asyncio.sleep(0.003)
        self.events.append("change")
        self.assertEqual(self.events[0], "change")

    async def test_starts_empty(self):
        self.assertEqual(self.events, [])


class TestSync(unittest.TestCase):
    def test_sync(self):
        self.assertEqual(1 + 1, 2)
