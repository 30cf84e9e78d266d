"""A test that failed every sweep run, tried alone and in another order before it is
called failing.

A test can fail every sweep run because something that ran before it every time
broke it (an order-dependent test with a high rate), not because it is broken. So
before the verdict ``failing`` stands, :func:`recheck` runs each such test alone in
a fresh process and all of them once in another order: a serial sweep run's order
reversed (a hash order's when there is one: no sweep run had its reverse). A test
that passes in either is flaky and goes through the normal follow-ups; the facts
keep what the recheck showed (the pass in the other order is a passing execution,
with the tests that ran before it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

from flakehunt.classify.facts import Facts, Probe
from flakehunt.classify.followup import Step, absorb, alone_spec
from flakehunt.model import Finding, Purpose, RunResult, RunSpec

#: at most this many tests that failed every run are run alone, each in its own process
#: (a broken environment can fail hundreds); every one of them gets the other order
ALONE_AT_MOST = 20


def other_order(runs: Iterable[RunResult]) -> RunSpec | None:
    """The whole selection in the reverse of a sweep run's order, in one process: a
    serial run with a hash order first (the declared order's reverse was a sweep run
    already), else any run that has results."""
    swept = [r for r in runs if r.spec.purpose is Purpose.SWEEP and r.results]
    if not swept:
        return None
    source = min(swept, key=lambda r: (r.spec.workers > 0, not r.spec.order.startswith("hash"),
                                       r.spec.index))
    order = [r.nodeid for r in sorted(source.results, key=lambda r: (r.worker, r.position or 0))]
    return replace(source.spec, purpose=Purpose.REORDER, order="declared", workers=0,
                   split=None, tests=tuple(reversed(list(dict.fromkeys(order)))))


def plan(failing: list[Finding], runs: list[RunResult], seed: int,
         slowdowns: Mapping[str, float]) -> Step:
    """The recheck's runs: the other order once, each test alone (at most ALONE_AT_MOST)."""
    step: Step = []
    spec = other_order(runs)
    if spec is not None:
        step.append((Probe.REORDER, spec))
    for i, f in enumerate(failing[:ALONE_AT_MOST]):
        step.append((Probe.ALONE, replace(alone_spec(f, seed + i, slowdowns), count=1)))
    return step


def file_runs(facts: Mapping[str, Facts], step: Step, done: list[RunResult]) -> None:
    """Each test's own alone run and the shared other-order run, filed in its facts."""
    for (probe, spec), run in zip(step, done, strict=True):
        for nodeid, fx in facts.items():
            if probe is Probe.REORDER or spec.tests == (nodeid,):
                absorb(fx, [(probe, spec)], [run])


def passed_somewhere(fx: Facts) -> bool:
    """It passed alone, or in the other order."""
    return (fx.alone_first[0] < fx.alone_first[1] or fx.other_order[0] < fx.other_order[1])


def recheck(failing: list[Finding], facts: Mapping[str, Facts], runs: list[RunResult],
            seed: int, slowdowns: Mapping[str, float],
            run_step: Callable[[Step], list[RunResult]]) -> list[str]:
    """Run the recheck (``run_step`` runs a step's specs, results in step order) and
    return the tests it showed passing: flaky after all."""
    step = plan(failing, runs, seed, slowdowns)
    if not step:
        return []
    file_runs(facts, step, run_step(step))
    return [f.nodeid for f in failing if passed_somewhere(facts[f.nodeid])]
