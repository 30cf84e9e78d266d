"""Loops per millisecond of this machine, measured once, so CPU work in the
races keeps the same margins on faster and slower machines."""

import time


def _measure() -> float:
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        x = 0
        for i in range(20000):
            x += i
        best = min(best, time.perf_counter() - t0)
    return 20000 / (best * 1000)


LOOPS_PER_MS = _measure()


def burn(ms: float) -> int:
    """About ``ms`` milliseconds of pure-Python CPU work on a quiet core."""
    x = 0
    for i in range(int(LOOPS_PER_MS * ms)):
        x += i
    return x
