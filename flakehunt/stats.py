"""The statistics flakehunt states its confidence with (pure, one place)."""

from __future__ import annotations

import math

#: the confidence every stated bound is given at
CONFIDENCE = 0.95
#: the normal quantile of a two-sided 95% interval
Z95 = 1.96


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a rate seen ``k`` times in ``n`` trials."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    d = 1 + z * z / n
    c = p + z * z / (2 * n)
    m = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, (c - m) / d), min(1.0, (c + m) / d))


def runs_needed(min_rate: float, confidence: float = CONFIDENCE) -> int | None:
    """Same-outcome runs that rule out a rate of ``min_rate`` at ``confidence``
    (None: ``min_rate`` 0, nothing is ruled out)."""
    if min_rate <= 0:
        return None
    if min_rate >= 1:
        return 1
    return max(1, math.ceil(math.log(1 - confidence) / math.log(1 - min_rate)))


def rules_out(runs: int, confidence: float = CONFIDENCE) -> float | None:
    """The smallest failure rate ``runs`` runs would have shown at least once with
    probability ``confidence``: the p with ``1 - (1 - p) ** runs == confidence`` (None:
    no runs, nothing is ruled out)."""
    if runs <= 0:
        return None
    return float(1 - (1 - confidence) ** (1 / runs))


def percent_up(rate: float) -> str:
    """A rate ruled out, as a percentage rounded up (never claim a lower rate than
    was ruled out): whole percents from 2%, tenths below."""
    if rate >= 0.02:
        return f"{math.ceil(rate * 100 - 1e-9)}%"
    return f"{math.ceil(rate * 1000 - 1e-9) / 10:g}%"


def repeat_count(rate: float) -> int:
    """Repetitions so that at least one failure is ~95% likely at ``rate``
    (between 5 and 100; 50 when nothing is known of the rate)."""
    if rate <= 0:
        return 50
    return max(5, min(100, math.ceil(math.log(1 - CONFIDENCE) / math.log(max(1e-9, 1 - rate)))))
