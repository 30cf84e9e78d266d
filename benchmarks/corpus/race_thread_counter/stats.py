"""Hit counters updated from several threads without a lock."""
import threading


def _touch():
    pass


class Hits:
    def __init__(self):
        self.n = 0

    def hit(self):
        value = self.n
        _touch()
        self.n = value + 1

    def hammer(self, threads=2, each=100000):
        ts = [threading.Thread(target=lambda: [self.hit() for _ in range(each)])
              for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
