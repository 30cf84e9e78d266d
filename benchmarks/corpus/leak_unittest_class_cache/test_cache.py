import unittest


class Cache:
    entries = {}


class TestWarmCache(unittest.TestCase):
    def setUp(self):
        self.cache = Cache

    def test_warm(self):
        self.cache.entries["home"] = "<html>"
        self.assertEqual(len(self.cache.entries), 1)


class TestColdStart(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cache = Cache

    def test_starts_cold(self):
        self.assertEqual(self.cache.entries, {})

    def test_cache_class(self):
        self.assertIs(self.cache, Cache)
