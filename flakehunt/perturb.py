"""Child-side perturbations the plugin applies (imported only when asked for)."""

from __future__ import annotations

import asyncio
import contextvars
import os
import random
import subprocess
import sys
from collections.abc import Callable

BURNER = """
import os
parent = {parent}
while os.getppid() == parent:  # exits by itself if the run dies without killing it
    for _ in range(200000):
        pass
"""


def start_burners(n: int) -> list[subprocess.Popen[bytes]]:
    """N busy-looping processes in this run's process group (so nice and the
    scheduler's autogroup treat them as the run's neighbours, and a kill of the
    group takes them too)."""
    code = BURNER.format(parent=os.getpid())
    return [subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(n)]


class TimerJitter:
    """Delay every asyncio timer (call_at, hence call_later, sleep, wait_for) by a
    seeded random amount in [0, max_s]. Reseeded per test, so a failure replays
    from its seed."""

    def __init__(self, max_s: float) -> None:
        self.max_s = max_s
        self.rng = random.Random(0)
        self.original: Callable[..., asyncio.TimerHandle] | None = None
        self.delayed = 0

    def reseed(self, seed: str) -> None:
        self.rng.seed(seed)

    def install(self) -> None:
        original = asyncio.BaseEventLoop.call_at
        jitter = self

        def call_at(loop: asyncio.BaseEventLoop, when: float, callback: Callable[..., object],
                    *args: object, context: contextvars.Context | None = None
                    ) -> asyncio.TimerHandle:
            jitter.delayed += 1
            return original(loop, when + jitter.rng.uniform(0, jitter.max_s), callback, *args,
                            context=context)

        self.original = original
        asyncio.BaseEventLoop.call_at = call_at  # type: ignore[method-assign, assignment]

    def uninstall(self) -> None:
        if self.original is not None:
            asyncio.BaseEventLoop.call_at = self.original  # type: ignore[method-assign, assignment]
            self.original = None
