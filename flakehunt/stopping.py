"""When the sweep has seen enough: a stated-confidence stop rule (pure).

A test is *settled* once it has shown both outcomes (it is flaky: more sweep
runs add nothing to that verdict; the follow-ups take over) or once it has
given the same outcome in ``needed`` sweep runs, where ``needed`` is the
smallest n with ``(1 - min_rate) ** n <= 1 - confidence``: had the test failed
(or passed) at ``min_rate`` or more under the sweep's conditions, so many
runs without a single exception would happen less than ``1 - confidence`` of
the time. The sweep stops when every test is settled.

``min_rate = 0`` turns the rule off: the sweep runs every planned run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flakehunt.model import Outcome, RunResult
from flakehunt.stats import runs_needed

__all__ = ["StopRule", "runs_needed"]


@dataclass
class StopRule:
    needed: int | None  # None: never stop early
    #: nodeid -> [passed, bad] sweep executions
    seen: dict[str, list[int]] = field(default_factory=dict)

    def add(self, run: RunResult) -> None:
        for r in run.results:
            cell = self.seen.setdefault(r.nodeid, [0, 0])
            cell[0] += r.outcome is Outcome.PASSED
            cell[1] += r.outcome.bad

    def settled(self, nodeid: str) -> bool:
        passed, bad = self.seen.get(nodeid, (0, 0))
        if passed and bad:
            return True
        return self.needed is not None and max(passed, bad) >= self.needed

    def missing(self, nodeids: tuple[str, ...]) -> int | None:
        """Sweep runs still needed before every collected test is settled: 0 when the
        rule is satisfied, None when it never is (no stop rule). A test never run, e.g.
        always skipped, is settled by the rest: no number of runs would give it a
        verdict; before any test has run, every run is still needed."""
        if self.needed is None:
            return None
        ran = [n for n in nodeids if n in self.seen and sum(self.seen[n]) > 0]
        if not ran:
            return self.needed
        return max(0 if self.settled(n) else self.needed - max(self.seen[n]) for n in ran)

    def satisfied(self, nodeids: tuple[str, ...]) -> bool:
        """Every collected test settled."""
        return self.missing(nodeids) == 0

    @property
    def flaky(self) -> int:
        return sum(1 for p, b in self.seen.values() if p and b)
