"""What a hunt is asked to do, and the one place its values are checked."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flakehunt import profiles
from flakehunt.errors import UsageError

DIST_MODES = ("load", "loadscope", "loadfile", "loadgroup", "worksteal", "each")


@dataclass(frozen=True)
class HuntSettings:
    selection: tuple[str, ...] = ()
    pytest_args: tuple[str, ...] = ()
    runs: int = 50
    seed: int | None = None
    workers: tuple[int, ...] = (0, 2)
    profiles: tuple[str, ...] = profiles.DEFAULT
    dist: tuple[str, ...] = ("load",)
    jobs: int = 0  # 0: one slot per CPU
    python: str = sys.executable
    run_timeout: float = 300.0
    workdir: Path | None = None
    classify: bool = True
    evidence: bool = True
    cwd: Path = field(default_factory=Path.cwd)
    #: seconds from the hunt's start after which no new sweep run starts (None: no limit)
    budget: float | None = None
    #: (i, n): run only the sweep runs whose plan index is i-1 modulo n
    shard: tuple[int, int] | None = None
    #: opt-in early stop: end the sweep once every test is flaky or has given one outcome
    #: in enough runs to rule out this failure (or pass) rate at 95% confidence; 0 (the
    #: default): run every planned run, so ``runs`` gives the detection power of that many
    min_rate: float = 0.0
    #: how runs start: ``warm`` (forked by warm parents where that is safe, see
    #: flakehunt.pool) or ``fresh`` (every run a fresh interpreter)
    start: str = "warm"


def validate(settings: HuntSettings) -> None:
    """The rule for every value a hunt takes; the command line parses, this decides."""
    if settings.runs < 1:
        raise UsageError("--runs must be at least 1")
    if any(w < 0 for w in settings.workers) or not settings.workers:
        raise UsageError("--workers: give counts >= 0, e.g. 0,2")
    for option, names in (("--profiles", settings.profiles), ("--dist", settings.dist)):
        if not names:
            raise UsageError(f"{option}: give at least one name")
    for name in settings.profiles:
        try:
            profiles.get(name)
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from None
    for mode in settings.dist:
        if mode not in DIST_MODES:
            raise UsageError(f"unknown --dist mode {mode!r}; known: {', '.join(DIST_MODES)}")
    if not math.isfinite(settings.run_timeout) or settings.run_timeout <= 0:
        raise UsageError("--run-timeout must be positive")
    if settings.shard is not None and settings.shard[1] > settings.runs:
        raise UsageError(f"--shard {settings.shard[0]}/{settings.shard[1]}: "
                         f"{settings.runs} runs cannot be split {settings.shard[1]} ways")
    if settings.budget is not None and settings.budget <= 0:
        raise UsageError("--budget must be positive")
    if settings.start not in ("warm", "fresh"):
        raise UsageError(f"--start takes warm or fresh, not {settings.start!r}")
    if not 0 <= settings.min_rate < 1:
        raise UsageError("--min-rate takes a rate from 0 (off) to below 1, e.g. 0.2")


def settings_dict(settings: HuntSettings, seed: int) -> dict[str, Any]:
    return {"selection": list(settings.selection), "pytest_args": list(settings.pytest_args),
            "runs": settings.runs, "seed": seed, "workers": list(settings.workers),
            "profiles": list(settings.profiles), "dist": list(settings.dist),
            "python": settings.python, "run_timeout": settings.run_timeout,
            "classify": settings.classify, "budget": settings.budget,
            "min_rate": settings.min_rate, "start_asked": settings.start,
            "shard": "/".join(map(str, settings.shard)) if settings.shard else None}
