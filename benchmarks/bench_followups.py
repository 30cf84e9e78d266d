"""Follow-up runs per flaky test against their bounds, on fake suites: no processes.

    python3 benchmarks/bench_followups.py [--seeds 5-34] [--sizes 60,112,300] [--no-bound]

Each hunt is tests/unit/test_followup_bound.py's: a suite of n tests whose victims fail
exactly when one of their causes ran before them in the same process (one polluter,
two together, either of two with a third as freezegun's, three together as freezegun's
test_uuid1_past), 50 sweep runs in random orders, then flakehunt's classification with
its follow-ups answered by the fake suite. Prints, per kind of cause: the flaky victims,
how many were named right (state-leak, the right polluter; three together: named
none and not called a state leak), how many passed ceil(log2 n) + 8 follow-up runs or
ceil(log2 n) + 3 search runs, and the runs they took. ``--no-bound`` measures the same
hunts with the bounds off (what the bound costs and gives up).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "unit"))
sys.path.insert(0, str(ROOT))

from test_followup_bound import hunt  # noqa: E402

import flakehunt.classify as classify  # noqa: E402

KINDS = ("one", "two together", "either of two with a third", "three together")


def kind_of(causes: list[set[str]]) -> str:
    if max(map(len, causes)) > 2:
        return KINDS[3]
    return KINDS[2] if len(causes) > 1 else KINDS[len(causes[0]) - 1]


def measure(seeds: list[int], sizes: list[int]) -> Counter[tuple[str, str]]:
    out: Counter[tuple[str, str]] = Counter()
    for seed in seeds:
        for n in sizes:
            causes, by_id, _ = hunt(n, pairs=3, singles=3, seed=seed)
            log2n = math.ceil(math.log2(n))
            for victim, cs in causes.items():
                f = by_id[victim]
                if f.verdict.value != "flaky":
                    continue
                kind = kind_of(cs)
                spent = sum(f.followups.values())
                search = f.followups.get("bisect", 0) + f.followups.get("suspect", 0)
                if kind == KINDS[3]:
                    right = not f.polluter and f.category != "state-leak"
                else:
                    right = f.category == "state-leak" and set(f.polluter) in cs
                out[kind, "flaky"] += 1
                out[kind, "right"] += right
                out[kind, "over all"] += spent > log2n + 8
                out[kind, "over search"] += search > log2n + 3
                out[kind, "runs"] += spent
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="5-34", help="a range A-B or a list A,B,...")
    ap.add_argument("--sizes", default="60,112,300")
    ap.add_argument("--no-bound", action="store_true", help="follow-ups without the bounds")
    args = ap.parse_args()
    if "-" in args.seeds:
        a, b = map(int, args.seeds.split("-"))
        seeds = list(range(a, b + 1))
    else:
        seeds = [int(s) for s in args.seeds.split(",")]
    if args.no_bound:
        classify.bounds = lambda n: (0, 0)  # type: ignore[assignment]
    got = measure(seeds, [int(s) for s in args.sizes.split(",")])
    print(f"{len(seeds)} seeds x sizes {args.sizes}, bounds {'off' if args.no_bound else 'on'}")
    print(f"{'cause':28} {'flaky':>6} {'right':>6} {'over all':>9} {'over search':>12} "
          f"{'runs':>6} {'per test':>9}")
    for kind in KINDS:
        n = got[kind, "flaky"]
        if n:
            print(f"{kind:28} {n:6} {got[kind, 'right']:6} {got[kind, 'over all']:9} "
                  f"{got[kind, 'over search']:12} {got[kind, 'runs']:6} "
                  f"{got[kind, 'runs'] / n:9.1f}")


if __name__ == "__main__":
    main()
