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

    def availability(self) -> Availability: ...

    def child_args(self, run_index: int) -> tuple[str, ...]: ...


class NoProfile:
    name = "none"
    description = "the machine as it is"

    def availability(self) -> Availability:
        return Availability(True, "none")

    def child_args(self, run_index: int) -> tuple[str, ...]:
        return ()


def allowed_cpus() -> list[int]:
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


class SingleCore:
    """The whole run, xdist workers included, pinned to one CPU."""

    name = "single-core"
    description = "run and its xdist workers pinned to one CPU (sched_setaffinity)"

    def availability(self) -> Availability:
        if not hasattr(os, "sched_setaffinity"):
            return Availability(False, "none", "this platform has no CPU affinity")
        return Availability(True, "sched_setaffinity")

    def child_args(self, run_index: int) -> tuple[str, ...]:
        cpus = allowed_cpus()
        return (f"--flakehunt-cpus={cpus[run_index % len(cpus)]}",)


PROFILES: dict[str, Profile] = {p.name: p for p in (NoProfile(), SingleCore())}


def get(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}") from None
