"""Output formats, one module each, all behind :class:`Reporter`; and the wording they share
(a test's failure rate, where it failed, the one-line summary of a hunt)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Protocol

from flakehunt.model import Finding, HuntResult, Purpose
from flakehunt.stats import percent_up


class Reporter(Protocol):
    def render(self, result: HuntResult) -> str: ...


def nodeid_parts(nodeid: str) -> list[str]:
    """``path::Class::test[params]`` -> ``[path, Class, test[params]]``; a ``::`` inside the
    parameters (they are the test's own text) does not split."""
    head, bracket, params = nodeid.partition("[")
    parts = head.split("::")
    parts[-1] += bracket + params
    return parts


def verdict_counts(findings: Iterable[Finding]) -> Counter[str]:
    """How many tests got each verdict, by the verdict's name ("flaky": 2, ...)."""
    return Counter(f.verdict.value for f in findings)


def rate(f: Finding) -> str:
    """``3/10 (30%)``: failed runs out of the runs it ran (not skipped) in."""
    return f"{f.bad}/{f.runs - f.skipped} ({f.failure_rate:.0%})"


def failed_under(f: Finding) -> str:
    """`order hash 12/40 · workers 2 9/25` - where the failures happened."""
    parts = []
    for dim, values in f.breakdown.items():
        cells = [f"{v} {bad}/{runs}" for v, (bad, runs) in sorted(values.items()) if runs]
        if any(bad for bad, _ in values.values()):
            parts.append(f"{dim} " + ", ".join(cells))
    return "\n".join(parts)


def summary(result: HuntResult) -> str:
    """``2 flaky, 25 stable in 10 runs + 6 pair-screen runs + 14 follow-ups (seed 11)``."""
    counts = verdict_counts(result.findings)
    order = ("flaky", "failing", "stable", "skipped", "not_run")
    text = ", ".join(f"{counts[k]} {k}" for k in order if counts.get(k))
    sweep = sum(1 for r in result.runs if r.spec.purpose is Purpose.SWEEP)
    screened = sum(1 for r in result.runs if r.spec.purpose is Purpose.SCREEN)
    more = len(result.runs) - sweep - screened
    line = f"{text} in {sweep} runs" + (f" + {screened} pair-screen runs" if screened else "") \
        + (f" + {more} follow-ups" if more else "")
    line += f" (seed {result.seed})"
    if result.interrupted:
        line += " - interrupted, partial results"
    return line


def detection_lines(result: HuntResult) -> list[str]:
    """What the hunt could have seen: ``a test failing 6% of runs would have been seen
    with 95% probability``, overall and per planned condition (none: nothing ran)."""
    d = result.settings.get("detection")
    if not d or d.get("rules_out") is None:
        return []
    lines = [f"detection: every test ran in at least {d['runs']} sweep runs: a test failing "
             f"{percent_up(d['rules_out'])} of runs would have been seen failing with "
             f"{d.get('confidence', 0.95):.0%} probability"]
    parts = []
    for dim, cells in (d.get("per_condition") or {}).items():
        shown = [f"{v} {c['runs']} runs -> {percent_up(c['rules_out'])}"
                 if c.get("rules_out") is not None else f"{v} 0 runs -> nothing"
                 for v, c in cells.items()]
        if len(shown) > 1:
            parts.append(f"{dim} " + ", ".join(shown))
    if parts:
        lines.append("  a failure confined to one condition gets only its runs: "
                     + "; ".join(parts))
    return lines


def cluster_lines(result: HuntResult) -> list[str]:
    """The root causes, worst first: one line each, with its tests and its fix."""
    if not result.clusters:
        return []
    tests = sum(len(c.tests) for c in result.clusters)
    lines = [f"root causes: {len(result.clusters)} (of {tests} flaky test(s))"]
    for n, c in enumerate(result.clusters, 1):
        fix = c.fix
        said = f"patch {fix.patch} {fix.status}" if fix.patch else (
            fix.evidence or "no patch tried (--patch-dir makes and verifies one)")
        lines.append(f"{n}. {c.cause}; {len(c.tests)} test(s); {said}")
    return lines
