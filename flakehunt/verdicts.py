"""Pure: the sweep's results -> one verdict per test, with counts and breakdowns."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from flakehunt.model import Finding, Outcome, Purpose, RunResult, Verdict
from flakehunt.stats import CONFIDENCE, rules_out

#: the planned conditions a failure can be confined to, each stated on its own
CONDITIONS = ("profile", "workers")


def order_kind(order: str) -> str:
    return order.partition(":")[0]


def dimensions(run: RunResult) -> dict[str, str]:
    spec = run.spec
    order = "pairs" if spec.purpose is Purpose.SCREEN else order_kind(spec.order)
    return {"order": order, "workers": str(spec.workers), "profile": spec.profile}


class Tally:
    def __init__(self) -> None:
        self.counts: dict[Outcome, int] = defaultdict(int)
        self.breakdown: dict[str, dict[str, list[int]]] = defaultdict(
            lambda: defaultdict(lambda: [0, 0]))
        self.messages: dict[str, int] = defaultdict(int)

    def add(self, outcome: Outcome, dims: dict[str, str], message: str | None) -> None:
        self.counts[outcome] += 1
        if outcome is Outcome.SKIPPED:
            return
        for dim, value in dims.items():
            cell = self.breakdown[dim][value]
            cell[0] += outcome.bad
            cell[1] += 1
        if message:
            self.messages[message] += 1


def first_line(message: str) -> str:
    return message.strip().splitlines()[0][:200] if message.strip() else ""


def tally(runs: Iterable[RunResult]) -> dict[str, Tally]:
    tallies: dict[str, Tally] = defaultdict(Tally)
    for run in runs:
        dims = dimensions(run)
        for result in run.results:
            message = first_line(result.failure.message) if result.failure else None
            tallies[result.nodeid].add(result.outcome, dims, message)
    return tallies


def verdict_of(t: Tally) -> Verdict:
    c = t.counts
    bad = c[Outcome.FAILED] + c[Outcome.ERROR] + c[Outcome.CRASHED]
    if bad and c[Outcome.PASSED]:
        return Verdict.FLAKY
    if bad:
        return Verdict.FAILING
    if c[Outcome.PASSED]:
        return Verdict.STABLE
    if c[Outcome.SKIPPED]:
        return Verdict.SKIPPED
    return Verdict.NOT_RUN


def findings(runs: Iterable[RunResult], nodeids: Iterable[str]) -> list[Finding]:
    """One finding per collected test, in collection order."""
    tallies = tally(runs)
    out = []
    for nodeid in dict.fromkeys([*nodeids, *tallies]):
        t = tallies.get(nodeid, Tally())
        c = t.counts
        out.append(Finding(
            nodeid=nodeid,
            verdict=verdict_of(t),
            runs=sum(c.values()),
            passed=c[Outcome.PASSED],
            failed=c[Outcome.FAILED],
            errored=c[Outcome.ERROR],
            skipped=c[Outcome.SKIPPED],
            crashed=c[Outcome.CRASHED],
            breakdown={dim: {v: (cell[0], cell[1]) for v, cell in values.items()}
                       for dim, values in t.breakdown.items()},
            messages=tuple(m for m, _ in sorted(t.messages.items(), key=lambda kv: -kv[1])),
        ))
    return out


def power(runs: int) -> dict[str, Any]:
    """``runs`` same-condition runs and the failure rate they rule out (None: none)."""
    p = rules_out(runs)
    return {"runs": runs, "rules_out": None if p is None else round(p, 4)}


def detection(findings: Iterable[Finding]) -> dict[str, Any] | None:
    """What the sweep could have seen: the fewest runs any test had (skips aside) and the
    failure rate they rule out at 95%, i.e. a test failing that often would have failed
    at least once with 95% probability; and the same per planned condition (per profile,
    per worker count), since a failure confined to one condition only gets its runs.
    None when no test ran."""
    ran = [f for f in findings if f.runs - f.skipped > 0]
    if not ran:
        return None
    per_condition = {}
    for dim in CONDITIONS:
        values = sorted({v for f in ran for v in f.breakdown.get(dim, {})},
                        key=lambda v: (not v.isdigit(), int(v) if v.isdigit() else 0, v))
        per_condition[dim] = {v: power(min(f.breakdown.get(dim, {}).get(v, (0, 0))[1]
                                           for f in ran)) for v in values}
    return {**power(min(f.runs - f.skipped for f in ran)), "confidence": CONFIDENCE,
            "per_condition": per_condition}
