"""A stamper that reads the wall clock through a module function."""
import time


def now():
    return time.time()


class Stamper:
    def stamp(self, text):
        return f"{int(now())}:{text}"
