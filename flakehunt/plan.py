"""Pure planning: settings -> the run specs of a sweep.

Run 0 keeps the declared order, run 1 reverses it, every other run has its own
hash order; worker counts and profiles rotate every run so every combination
is met (serial runs weighted 3:1 against each xdist worker count, each profile
as often as the weight the caller gives it: the hunt gives throttled profiles 2:1
against the others). Every seed is derived from the hunt's seed: the same seed
gives the same plan.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from flakehunt.model import RunSpec
from flakehunt.ordering import derive

__all__ = ["PlanSettings", "derive", "sweep"]


@dataclass(frozen=True)
class PlanSettings:
    runs: int
    seed: int
    workers: tuple[int, ...] = (0, 2)
    profiles: tuple[str, ...] = ("none",)
    dist: tuple[str, ...] = ("load",)
    #: profile name -> its runs per turn of the rotation (absent: 1); the caller fills
    #: it from the profiles' ``weight``
    weights: Mapping[str, int] = field(default_factory=dict)
    #: serial runs per run of each parallel worker count (chosen on the corpus:
    #: benchmarks/bench_defaults.py)
    serial_weight: int = 3


def order_for(seed: int, index: int) -> str:
    if index == 0:
        return "declared"
    if index == 1:
        return "reverse"
    return f"hash:{derive(seed, 'order', index)}"


SERIAL_WEIGHT = PlanSettings.serial_weight


def worker_cycle(workers: tuple[int, ...], serial_weight: int = SERIAL_WEIGHT) -> tuple[int, ...]:
    """Serial runs SERIAL_WEIGHT times as often as each parallel count: an xdist run
    costs its workers' start-up on every core, and order effects need many serial runs."""
    serial = [w for w in workers if w == 0]
    parallel = [w for w in workers if w > 0]
    return tuple(serial * serial_weight + parallel) if serial and parallel else tuple(workers)


def profile_cycle(profiles: tuple[str, ...],
                  weights: Mapping[str, int] | None = None) -> tuple[str, ...]:
    """One cycle with each profile as often as its weight says (a throttled run
    keeps a fraction of a CPU busy: twice the runs fit beside the others at no more
    wall time), spread by smooth weighted round robin, then turned to start with the
    first profile given (run 0, the declared order, gets the machine as it is).
    A profile ``weights`` does not name weighs 1."""
    per_turn = [(weights or {}).get(name, 1) for name in profiles]
    current = [0] * len(profiles)
    out = []
    for _ in range(sum(per_turn)):
        current = [c + w for c, w in zip(current, per_turn, strict=True)]
        pick = current.index(max(current))
        current[pick] -= sum(per_turn)
        out.append(profiles[pick])
    first = out.index(profiles[0]) if profiles else 0
    return tuple(out[first:] + out[:first])


def sweep(settings: PlanSettings) -> list[RunSpec]:
    """Both dimensions rotate every run; each block of lcm(W, P) runs shifts the
    profiles by one, so W x P runs meet every (workers, profile) pair."""
    workers = worker_cycle(settings.workers, settings.serial_weight)
    profiles = profile_cycle(settings.profiles, settings.weights)
    block = math.lcm(len(workers), len(profiles))
    return [
        RunSpec(
            index=i,
            order=order_for(settings.seed, i),
            random_seed=derive(settings.seed, "random", i),
            workers=workers[i % len(workers)],
            dist=settings.dist[(i // len(workers)) % len(settings.dist)],
            profile=profiles[(i + i // block) % len(profiles)],
        )
        for i in range(settings.runs)
    ]
