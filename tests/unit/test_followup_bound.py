"""The follow-up bound, on a fake oracle of n tests: no processes.

Each victim fails exactly when all the tests of one of its causes ran before it in
the same process (one polluter, two that only do it together, either of two
with a third, as freezegun's victims, or three together, as freezegun's
test_uuid1_past: no search for one or two tests can name them); nothing in the
runs' records singles a culprit out, so its polluter must be searched for. Per flaky
test: at most ceil(log2 n) + 8 follow-up runs, at most ceil(log2 n) + 3 of them
searching for its polluter - and the right polluter, with the right category (for
three together: no polluter named, not called a state leak).
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import replace

import pytest

from flakehunt import verdicts
from flakehunt.classify import classify
from flakehunt.model import Failure, Outcome, RunResult, RunSpec, TestResult


class Oracle:
    """A suite of n tests; ``causes[victim]`` are sets of tests, any one of which, all
    run earlier in the same process, makes the victim fail."""

    def __init__(self, n: int, causes: dict[str, list[set[str]]]) -> None:
        self.tests = [f"t_{i:04d}.py::test" for i in range(n)]
        self.causes = causes
        self.runs: list[RunResult] = []

    def stream(self, steps, then):
        queue = deque(steps.items())
        while queue:
            key, specs = queue.popleft()
            nxt = then(key, [self.one(s) for s in specs])
            if nxt:
                queue.append((key, nxt))

    def command(self, spec: RunSpec) -> str:
        return " ".join(spec.tests or ())

    def note(self, text: str) -> None:
        pass

    def one(self, spec: RunSpec) -> RunResult:
        order = list(spec.tests) if spec.tests else self.shuffled(spec.random_seed)
        order = [t for t in order for _ in range(spec.count)]
        results = []
        for pos, t in enumerate(order, 1):
            before = set(order[:pos - 1])
            bad = any(c <= before for c in self.causes.get(t, ()))
            results.append(TestResult(t, Outcome.FAILED if bad else Outcome.PASSED, "main", pos,
                                      0.01, Failure("call", "assert 1 == 0") if bad else None))
        run = RunResult(replace(spec, index=len(self.runs) + 1), "ok",
                        int(any(r.outcome.bad for r in results)), 1.0, tuple(results), "/tmp")
        self.runs.append(run)
        return run

    def shuffled(self, seed: int) -> list[str]:
        tests = list(self.tests)
        random.Random(seed).shuffle(tests)
        return tests


def hunt(n: int, pairs: int, singles: int, seed: int, sweep_runs: int = 50):
    rng = random.Random(seed)
    tests = [f"t_{i:04d}.py::test" for i in range(n)]
    picked = rng.sample(tests, 3 * pairs + 2 * singles)
    causes: dict[str, list[set[str]]] = {}
    for i in range(pairs):
        a, b, victim = picked[3 * i:3 * i + 3]
        causes[victim] = [{a, b}]
    for i in range(singles):
        p, victim = picked[3 * pairs + 2 * i:3 * pairs + 2 * i + 2]
        causes[victim] = [{p}]
    # freezegun's: either of two tests, each with a third
    a1, a2, b, victim = rng.sample([t for t in tests if t not in picked], 4)
    causes[victim] = [{a1, b}, {a2, b}]
    x, y, z, victim = rng.sample([t for t in tests if t not in picked and t not in causes
                                  and t not in {a1, a2, b}], 4)
    causes[victim] = [{x, y, z}]
    suite = Oracle(n, causes)
    sweep = [suite.one(RunSpec(index=0, order=f"hash:{i}", random_seed=rng.randrange(1 << 30)))
             for i in range(sweep_runs)]
    found = verdicts.findings(sweep, suite.tests)
    by_id = {f.nodeid: f for f in classify(found, sweep, suite, seed)}
    return causes, by_id, suite.runs[len(sweep):]


@pytest.mark.parametrize("n, seed", [(112, 1), (112, 2), (300, 3), (60, 4)])
def test_follow_ups_per_flaky_test_within_log2_n_plus_8(n, seed):
    causes, by_id, done = hunt(n, pairs=3, singles=3, seed=seed)
    log2n = math.ceil(math.log2(n))
    flaky = [v for v in causes if by_id[v].verdict.value == "flaky"]
    assert len(flaky) >= 4  # the sweep saw most victims both pass and fail
    for victim in flaky:
        f = by_id[victim]
        if max(len(c) for c in causes[victim]) > 2:
            assert not f.polluter and f.category != "state-leak", (victim, f.category)
            assert any("named none" in line for line in f.evidence), f.evidence
        else:
            assert f.category == "state-leak", victim
            assert set(f.polluter) in causes[victim], (victim, f.polluter)
        assert sum(f.followups.values()) <= log2n + 8, (victim, f.followups)
        assert f.followups.get("bisect", 0) + f.followups.get("suspect", 0) <= log2n + 3, (
            victim, f.followups)
    # every follow-up run is counted for some test
    assert len(done) <= sum(sum(by_id[v].followups.values()) for v in flaky)
