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
from typing import Protocol

from flakehunt import signatures
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
from flakehunt.classify.followup import bisect_spec, follow_up, known, searching
from flakehunt.classify.rules import RULES, Decision, Rule, decide, finish
from flakehunt.classify.wording import (
    MISCONFIG_HINTS,
    following_up,
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
               seed: int, context: Context) -> dict[str, Facts]:
    """Every flaky test's follow-ups as its own chain of steps; the runner advances a
    chain as soon as its own runs are done, so one test's bisection overlaps another's
    reproducer check instead of waiting for the slowest test of a round."""
    flaky = [f for f in findings if f.verdict is Verdict.FLAKY]
    facts = {f.nodeid: gather(f, runs, context) for f in flaky}
    chains = {f.nodeid: follow_up(f, facts[f.nodeid], runs, seed + 7919 * i, runner.command)
              for i, f in enumerate(flaky)}
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
    return facts


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
    evidence and verified reproducer; a failing test's setup problem, if it has one.
    ``warnings`` gets one line per test some of whose follow-up runs did not run it."""
    context = context or Context()
    facts = experiment(findings, runs, runner, seed, context) if any(
        f.verdict is Verdict.FLAKY for f in findings) else {}
    if warnings is not None:
        warnings += unrun_warnings(facts)
    out = []
    for f in findings:
        if f.nodeid in facts:
            out.append(finish(f, facts[f.nodeid]))
        elif f.verdict is Verdict.FAILING:
            out.append(misconfigured(f, runs))
        else:
            out.append(f)
    return out
