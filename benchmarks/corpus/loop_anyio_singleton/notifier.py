"""A notifier that wakes waiters through the loop it captured when first used."""
import asyncio


class Notifier:
    def __init__(self):
        self._loop = None
        self.seen = []

    def notify_soon(self, event):
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        self._loop.call_soon(self.seen.append, event)


NOTIFIER = Notifier()
