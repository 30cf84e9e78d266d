"""Pure: the pair screen -- the tests that change one state item, in designed orders.

An order-dependent test fails when its polluter ran before it and no test in between
put the state back. Among the k tests that change one item, random orders put a
given one last before another about once in k runs; and a test that puts the item
back to an equal size leaves no visible change, so in practice the pair can be far
rarer (pytm's victims fail in 1-2 random orders of 50, after one test of 113).

The sweep's state diffs say which tests changed which item (a module global, a
class attribute, an environment variable, a cache...). For every item changed by 2
to :data:`MAX_TESTS` tests, the screen runs just those tests, in the rows of a
Williams design (a row-complete Latin square): k orders (k + 1 when k is odd) that
put every ordered pair of them side by side exactly once. A test of the group that
fails after another one of it then fails in the row where that one runs right
before it, whatever undoes the state elsewhere. A row whose every pair already ran
side by side in one sweep process (or an earlier row) is left out. The rows run
serially in one small process each; their outcomes count in the verdicts like a
sweep run's.

What the screen cannot see: a victim that only reads the item (it never changes it
itself) -- random orders meet it whenever few tests change the item; items changed
by more than MAX_TESTS tests; more than :data:`MAX_RUNS` rows in all (the report
says how many rows it left out).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from flakehunt.model import Purpose, RunResult, RunSpec
from flakehunt.ordering import crc, derive

#: an item changed by more tests than this is not screened (its rows: k runs of k tests)
MAX_TESTS = 12
#: the screen's rows in all, at most
MAX_RUNS = 36


@dataclass(frozen=True)
class Screen:
    """The screen's runs, and what it left out (for the report)."""

    specs: tuple[RunSpec, ...]
    #: items changed by 2..MAX_TESTS tests, and by more
    items: int
    too_many: int
    #: rows the run cap left out
    left_out: int


def williams(k: int) -> list[list[int]]:
    """Rows of a Williams design of ``k`` symbols: every ordered pair (a, b), a != b,
    is side by side (a right before b) in at least one row; k rows when k is even
    (each pair exactly once), k + 1 when odd (a dummy symbol, dropped)."""
    if k < 2:
        return [list(range(k))] if k else []
    m = k + k % 2
    base, low, high = [0], 1, m - 1
    while len(base) < m:
        base.append(low)
        low += 1
        if len(base) < m:
            base.append(high)
            high -= 1
    rows = [[(b + r) % m for b in base] for r in range(m)]
    return [[x for x in row if x < k] for row in rows]


def pairs(order: Sequence[str]) -> set[tuple[str, str]]:
    return set(zip(order, order[1:], strict=False))


def changed_by(runs: Iterable[RunResult]) -> dict[str, frozenset[str]]:
    """State item -> the tests that changed it (and did not put it back) in some run."""
    out: dict[str, set[str]] = {}
    for run in runs:
        for result in run.results:
            for change in result.evidence.get("state") or ():
                what = change.get("what")
                if what:
                    out.setdefault(what, set()).add(result.nodeid)
    return {what: frozenset(tests) for what, tests in out.items()}


def side_by_side(runs: Iterable[RunResult]) -> set[tuple[str, str]]:
    """Every (a, b) where b ran right after a in one process of one of ``runs``."""
    out: set[tuple[str, str]] = set()
    for run in runs:
        per_worker: dict[str, list[tuple[int, str]]] = {}
        for r in run.results:
            if r.position is not None:
                per_worker.setdefault(r.worker, []).append((r.position, r.nodeid))
        for executions in per_worker.values():
            executions.sort()
            for (p, a), (q, b) in zip(executions, executions[1:], strict=False):
                if q == p + 1 and a != b:
                    out.add((a, b))
    return out


def plan(runs: Sequence[RunResult], seed: int, max_tests: int = MAX_TESTS,
         max_runs: int = MAX_RUNS) -> Screen:
    """The screen's runs for the sweep ``runs``: smaller groups first (more of them
    fit under the cap), each group's tests in a seeded order so that the design is
    not tied to the collection order."""
    groups = sorted(set(changed_by(r for r in runs if r.spec.purpose is Purpose.SWEEP).values()),
                    key=lambda g: (len(g), sorted(g)))
    screened = [g for g in groups if 2 <= len(g) <= max_tests]
    seen = side_by_side(runs)
    specs: list[RunSpec] = []
    left_out = 0
    for group in screened:
        tests = sorted(group)
        random.Random(crc(seed, "screen::" + "::".join(tests))).shuffle(tests)
        for row in williams(len(tests)):
            order = tuple(tests[i] for i in row)
            if pairs(order) <= seen:
                continue
            if len(specs) >= max_runs:
                left_out += 1
                continue
            seen |= pairs(order)
            specs.append(RunSpec(index=len(specs), order="declared",
                                 random_seed=derive(seed, "screen", len(specs)),
                                 purpose=Purpose.SCREEN, tests=order))
    return Screen(tuple(specs), items=len(screened),
                  too_many=sum(1 for g in groups if len(g) > max_tests), left_out=left_out)
