"""A memo store behind a service object: the entries sit two attributes deep."""


class Store:
    def __init__(self):
        self.counters = {}  # lookups per key: changes on every read, harmless
        self._entries = {}

    def get(self, key, default=None):
        self.counters[key] = self.counters.get(key, 0) + 1
        return self._entries.get(key, default)

    def put(self, key, value):
        self._entries[key] = value


class Service:
    def __init__(self):
        self.store = Store()


service = Service()
