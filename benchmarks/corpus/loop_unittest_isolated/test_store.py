import asyncio
import unittest

from session import STORE


class TestStoreWrites(unittest.IsolatedAsyncioTestCase):
    async def test_concurrent_sets(self):
        await asyncio.gather(STORE.set("a", 1), STORE.set("b", 2))
        self.assertEqual(STORE.items["a"], 1)


class TestStoreMore(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.store = STORE

    async def test_many_sets(self):
        await asyncio.gather(*(self.store.set(str(i), i) for i in range(3)))
        self.assertEqual(self.store.items["2"], 2)

    async def test_no_lock_needed(self):
        self.assertIsInstance(self.store.items, dict)


class TestSync(unittest.TestCase):
    def test_plain(self):
        self.assertTrue(True)
