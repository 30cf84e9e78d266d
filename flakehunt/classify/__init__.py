"""Say why a flaky test is flaky: loop-closed, state-leak, race or unknown.

The package in the order a test goes through it:
- :mod:`.facts`: :class:`Facts`, what is known of one flaky test (the sweep's runs,
  then the follow-ups' tallies), and the pure predicates over it;
- :mod:`.followup`: each flaky test's follow-up experiments as a chain of steps (the
  test alone, its failing order replayed, polluter/state-setter bisection, the
  reproducer verified k/k), reusing what the sweep already ran;
- :mod:`.rules`: the decision, an ordered table of rules (first match wins);
- :mod:`.wording`: the evidence lines and fix hints.

This module drives them: :func:`experiment` runs every flaky test's chain through
a :class:`Runs` (the hunt), :func:`classify` turns the facts into findings, and
names a failing test's setup problem (a pytest-asyncio misconfiguration).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import partial
from typing import Protocol

from flakehunt import signatures
from flakehunt.classify import recheck
from flakehunt.classify.facts import (
    Context,
    Facts,
    Probe,
    brittle,
    gather,
    narrowed,
    order_dependent,
    prime_suspect,
    results_for,
    self_polluting,
    setter_candidates,
    spec_key,
)
from flakehunt.classify.followup import Step, bisect_spec, bounds, follow_up, known, searching
from flakehunt.classify.rules import RULES, Decision, Rule, decide, finish
from flakehunt.classify.wording import (
    MISCONFIG_HINTS,
    following_up,
    recheck_line,
    rechecking,
    signature_line,
    unrun_warnings,
)
from flakehunt.model import Finding, RunResult, RunSpec, TestResult, Verdict

__all__ = [
    "MISCONFIG_HINTS", "RULES", "Context", "Decision", "Facts", "Probe", "Rule", "Runs",
    "bisect_spec", "brittle", "classify", "decide", "experiment", "finish", "known",
    "misconfiguration", "narrowed", "order_dependent", "prime_suspect", "searching",
    "self_polluting", "setter_candidates", "spec_key",
]


class Runs(Protocol):
    """What classification needs of a hunt (flakehunt.hunt.Hunt is one): run steps of
    specs, build replay commands, say what it is doing."""

    def stream(self, steps: dict[str, list[RunSpec]],
               then: Callable[[str, list[RunResult]], list[RunSpec]]) -> None:
        """Run each key's specs; once all of a key's runs are done, ``then(key, runs)``
        (runs in spec order) gives its next specs, none when it is finished."""
        ...

    def command(self, spec: RunSpec) -> str: ...
    def note(self, text: str) -> None: ...


def experiment(findings: list[Finding], runs: list[RunResult], runner: Runs,
               seed: int, context: Context) -> tuple[dict[str, Facts], set[str]]:
    """Every flaky test's follow-ups as its own chain of steps; the runner advances a
    chain as soon as its own runs are done, so one test's bisection overlaps another's
    reproducer check instead of waiting for the slowest test of a round. First, the
    tests that failed every sweep run are tried alone and in another order
    (:mod:`.recheck`): those that pass there are flaky too (returned apart)."""
    flaky = [f for f in findings if f.verdict is Verdict.FLAKY]
    failing = [f for f in findings if f.verdict is Verdict.FAILING]
    facts = {f.nodeid: gather(f, runs, context) for f in flaky + failing}
    for fx in facts.values():
        fx.bound, fx.search_bound = bounds(len(findings))
    promoted = set(recheck.recheck(failing, facts, runs, seed, context.slowdowns,
                                   partial(run_step, runner))) if failing else set()
    flaky += [replace(f, verdict=Verdict.FLAKY) for f in failing if f.nodeid in promoted]
    board: list[tuple[str, ...]] = []  # polluters found, tried first for the others
    chains = {f.nodeid: follow_up(f, facts[f.nodeid], runs, seed + 7919 * i, runner.command,
                                  board) for i, f in enumerate(flaky)}
    first: dict[str, list[RunSpec]] = {}
    for key, chain in chains.items():
        step = next(chain, None)
        if step:
            first[key] = [spec for _, spec in step]

    def then(key: str, done: list[RunResult]) -> list[RunSpec]:
        try:
            return [spec for _, spec in chains[key].send(done)]
        except StopIteration:
            return []

    if first:
        runner.note(following_up(len(first)))
        runner.stream(first, then)
    return facts, promoted


def run_step(runner: Runs, step: Step) -> list[RunResult]:
    """One step's runs, all at once, in the step's order."""
    got: list[RunResult] = []

    def keep(key: str, done: list[RunResult]) -> list[RunSpec]:
        got.extend(done)
        return []

    runner.note(rechecking(len(step)))
    runner.stream({"recheck": [spec for _, spec in step]}, keep)
    return got


def misconfiguration(f: Finding, results: Iterable[TestResult]) -> signatures.Signature | None:
    for r in results:
        s = signatures.match(signatures.MISCONFIG, r.failure)
        if s:
            return s
    return None


def misconfigured(f: Finding, runs: list[RunResult]) -> Finding:
    """A failing test, with its setup problem named if its failures show one."""
    s = misconfiguration(f, (r for run in runs for r in results_for(run, f.nodeid)))
    if s is None:
        return f
    return replace(f, problem="misconfiguration", evidence=(signature_line(s),),
                   fix_hint=MISCONFIG_HINTS.get(s.key))


def classify(findings: list[Finding], runs: list[RunResult], runner: Runs,
             seed: int, context: Context | None = None,
             warnings: list[str] | None = None) -> list[Finding]:
    """Each flaky test's follow-ups run through ``runner``, then its category, culprit,
    evidence and verified reproducer; a test that failed every sweep run is tried alone
    and in another order first (passing there, it is flaky, order-dependent); a failing
    test's setup problem, if it has one. ``warnings`` gets one line per test some of
    whose follow-up runs did not run it."""
    context = context or Context()
    facts, promoted = experiment(findings, runs, runner, seed, context) if any(
        f.verdict in (Verdict.FLAKY, Verdict.FAILING) for f in findings) else ({}, set())
    if warnings is not None:
        warnings += unrun_warnings(facts)
    out = []
    for f in findings:
        if f.nodeid in promoted:
            done = finish(replace(f, verdict=Verdict.FLAKY), facts[f.nodeid])
            out.append(replace(done, evidence=(recheck_line(f, facts[f.nodeid]),
                                               *done.evidence)))
        elif f.verdict is Verdict.FLAKY and f.nodeid in facts:
            out.append(finish(f, facts[f.nodeid]))
        elif f.verdict is Verdict.FAILING:
            failed = misconfigured(f, runs)
            out.append(failed if f.nodeid not in facts else replace(
                failed, evidence=(*failed.evidence, recheck_line(f, facts[f.nodeid])),
                followups=dict(facts[f.nodeid].spent)))
        else:
            out.append(f)
    return out
