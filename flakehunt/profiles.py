"""CPU perturbation profiles: how a run is made to feel like a slow, busy CI box.

Each profile says whether it works on this machine and by which mechanism,
and what it adds to a child's command line. Unavailable profiles are reported,
never silently skipped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Availability:
    available: bool
    mechanism: str
    why: str = ""


class Profile(Protocol):
    name: str
    description: str
    #: True when a run under this profile is pinned to one CPU the scheduler picks
    pins: bool

    def availability(self) -> Availability: ...

    def cpus_used(self, workers: int) -> int:
        """How many CPUs a run with ``workers`` xdist workers keeps busy."""
        ...

    def child_args(self, cpu: int | None = None) -> tuple[str, ...]: ...


class NoProfile:
    name = "none"
    description = "the machine as it is"
    pins = False

    def availability(self) -> Availability:
        return Availability(True, "none")

    def cpus_used(self, workers: int) -> int:
        return max(1, workers)

    def child_args(self, cpu: int | None = None) -> tuple[str, ...]:
        return ()


def allowed_cpus() -> list[int]:
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


class SingleCore:
    """The whole run, xdist workers included, pinned to one CPU."""

    name = "single-core"
    description = "run and its xdist workers pinned to one CPU (sched_setaffinity)"
    pins = True

    def availability(self) -> Availability:
        if not hasattr(os, "sched_setaffinity"):
            return Availability(False, "none", "this platform has no CPU affinity")
        return Availability(True, "sched_setaffinity")

    def cpus_used(self, workers: int) -> int:
        return 1  # every process of the run shares the one CPU

    def child_args(self, cpu: int | None = None) -> tuple[str, ...]:
        return (f"--flakehunt-cpus={allowed_cpus()[0] if cpu is None else cpu}",)


PROFILES: dict[str, Profile] = {p.name: p for p in (NoProfile(), SingleCore())}


def get(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}") from None
