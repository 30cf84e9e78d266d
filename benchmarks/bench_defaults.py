"""Benchmark: choose the sweep's defaults (profile set, share of xdist runs) on the corpus.

Step 1 measures, for every timing race of the corpus (every ``race_*`` suite in
``benchmarks/corpus`` and ``examples/races``), its failure rate under each profile run
serially and under ``none`` with two xdist workers: ``--runs R`` runs per cell, one run
at a time (``--jobs 1``), classification off. Step 2 takes candidate defaults, lays out
the plan ``flakehunt run --runs 50`` would run with each (``flakehunt.plan.sweep``), and
computes from the measured rates each race's probability of being seen failing at
least once in the 50 runs, ``1 - prod((1 - rate[cell]) ** runs[cell])``, and the plan's
cost in CPU-seconds relative to the current default. A profile with xdist workers is
not measured; its rate is modelled as independent levers,
``1 - (1 - rate[profile]) * (1 - rate[none -n2])``.

    python benchmarks/bench_defaults.py [--runs 10] [--suite DIR ...] [--json out.json]
    python benchmarks/bench_defaults.py --from out.json   # step 2 only, on saved rates

The rates depend on the machine and its load (a race calibrated on an idle core fails
more on a busy one): compare the candidates within one measurement.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "benchmarks" / "corpus"
HUNT_RUNS = 50


def default_suites() -> list[Path]:
    return sorted(CORPUS.glob("race_*")) + [ROOT / "examples" / "races"]


def race_tests(suite: Path) -> set[str]:
    """The races a truth file names (empty for a suite without one: every test that
    fails somewhere counts)."""
    truth = suite / "truth.toml"
    if not truth.exists():
        return set()
    data = tomllib.loads(truth.read_text())
    return {f["test"] for f in data.get("flaky", []) if f.get("category") == "race"}


def measure_cell(suite: Path, profile: str, workers: int, runs: int, seed: int) -> dict:
    """One cell: ``runs`` runs of a fresh copy of the suite under one profile."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    flakehunt = Path(sys.executable).with_name("flakehunt")
    with tempfile.TemporaryDirectory(prefix=f"defaults-{suite.name}-") as tmp:
        work = Path(tmp) / suite.name
        shutil.copytree(suite, work, ignore=shutil.ignore_patterns("__pycache__"))
        out = Path(tmp) / "r.json"
        t0 = time.monotonic()
        proc = subprocess.run(
            [str(flakehunt), "run", ".", "--runs", str(runs), "--seed", str(seed),
             "--profiles", profile, "--workers", str(workers), "--jobs", "1",
             "--no-classify", "--no-progress", "--no-history", "--github", "off",
             "--fail-on", "never", "--json", str(out)],
            cwd=work, env=env, capture_output=True, text=True, check=False)
        wall = time.monotonic() - t0
        if not out.exists():
            return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"}
        report = json.loads(out.read_text())
    durations = [r["duration"] for r in report["runs"]]
    tests = {t["nodeid"]: [t["failed"] + t["errored"] + t.get("crashed", 0),
                           t["runs"] - t["skipped"]] for t in report["tests"]}
    return {"tests": tests, "run_wall": sum(durations) / max(1, len(durations)),
            "hunt_wall": round(wall, 1), "warnings": report.get("warnings", [])}


def cells() -> list[tuple[str, int]]:
    from flakehunt.profiles import PROFILES
    return [(name, 0) for name in PROFILES] + [("none", 2)]


def label(profile: str, workers: int) -> str:
    return profile if workers == 0 else f"{profile} -n{workers}"


def measure(suites: list[Path], runs: int, seed: int) -> dict:
    data: dict = {"runs": runs, "seed": seed, "suites": {}}
    for suite in suites:
        entry = data["suites"][str(suite.relative_to(ROOT))] = {
            "races": sorted(race_tests(suite)), "cells": {}}
        for profile, workers in cells():
            print(f"{suite.name}: {label(profile, workers)}...", file=sys.stderr, flush=True)
            entry["cells"][label(profile, workers)] = measure_cell(
                suite, profile, workers, runs, seed)
    return data


# -- step 2: the candidates -------------------------------------------------------------------

def candidates() -> dict[str, dict]:
    from flakehunt.profiles import DEFAULT
    base = list(DEFAULT)
    out = {"current default": {"profiles": base, "serial_weight": 7}}
    out["+ contended"] = {"profiles": [*base, "contended"], "serial_weight": 7}
    out["contended for single-core"] = {
        "profiles": [p if p != "single-core" else "contended" for p in base],
        "serial_weight": 7}
    out["+ quota-50"] = {"profiles": [*base, "quota-50"], "serial_weight": 7}
    out["xdist 1 in 4 (3:1)"] = {"profiles": base, "serial_weight": 3}
    out["+ contended, xdist 3:1"] = {"profiles": [*base, "contended"], "serial_weight": 3}
    out["every profile"] = {"profiles": [name for name, w in cells() if w == 0],
                            "serial_weight": 7}
    return out


def plan_cells(profiles: list[str], serial_weight: int, seed: int) -> dict[tuple[str, int], int]:
    """How many of the 50 planned runs fall in each (profile, workers) cell."""
    from flakehunt import plan
    from flakehunt.profiles import PROFILES
    weights = {p: PROFILES[p].weight for p in profiles}
    saved = plan.SERIAL_WEIGHT
    plan.SERIAL_WEIGHT = serial_weight
    try:
        specs = plan.sweep(plan.PlanSettings(runs=HUNT_RUNS, seed=seed, workers=(0, 2),
                                             profiles=tuple(profiles), weights=weights))
    finally:
        plan.SERIAL_WEIGHT = saved
    counts: dict[tuple[str, int], int] = {}
    for s in specs:
        counts[(s.profile, s.workers)] = counts.get((s.profile, s.workers), 0) + 1
    return counts


def rate(cells_: dict, profile: str, workers: int, nodeid: str) -> float:
    def r(lab: str) -> float:
        bad, ran = cells_.get(lab, {}).get("tests", {}).get(nodeid, (0, 0))
        return bad / ran if ran else 0.0
    if workers == 0:
        return r(profile)
    return 1 - (1 - r(profile)) * (1 - r(label("none", workers)))


def cost(cells_: dict, counts: dict[tuple[str, int], int]) -> float:
    """CPU-seconds of the plan: each run's wall time times the CPUs it holds."""
    from flakehunt.profiles import PROFILES
    total = 0.0
    for (profile, workers), n in counts.items():
        walls = cells_.get(label(profile, 0), {}).get("run_wall") or 1.0
        if workers:
            base = cells_.get("none", {}).get("run_wall") or 1.0
            walls *= (cells_.get(label("none", workers), {}).get("run_wall") or base) / base
        total += n * walls * PROFILES[profile].cpus_used(workers)
    return total


def races(data: dict) -> list[tuple[str, str]]:
    """(suite, nodeid) of every race: the truth's, or any test that failed somewhere."""
    out = []
    for suite, entry in data["suites"].items():
        named = set(entry["races"])
        failed = {n for c in entry["cells"].values() for n, (bad, _) in
                  c.get("tests", {}).items() if bad}
        out += [(suite, n) for n in sorted(named or failed)]
    return out


def evaluate(data: dict) -> dict:
    result = {}
    base_cost = None
    for name, cand in candidates().items():
        counts = plan_cells(cand["profiles"], cand["serial_weight"], data["seed"])
        probs = {}
        spend = sum(cost(entry["cells"], counts) for entry in data["suites"].values())
        for suite, nodeid in races(data):
            cells_ = data["suites"][suite]["cells"]
            miss = math.prod((1 - rate(cells_, p, w, nodeid)) ** n for (p, w), n in counts.items())
            probs[f"{suite}::{nodeid}"] = 1 - miss
        base_cost = base_cost or spend
        result[name] = {"profiles": cand["profiles"], "serial_weight": cand["serial_weight"],
                        "cells": {label(*k): v for k, v in sorted(counts.items())},
                        "p_found": probs, "cost": spend / base_cost}
    return result


def show(data: dict, result: dict) -> None:
    labels = [label(p, w) for p, w in cells()]
    print(f"failure rate per cell over {data['runs']} runs (serial unless -n)")
    print(f"{'race':52}" + "".join(f"{lab:>12}" for lab in labels))
    for suite, nodeid in races(data):
        c = data["suites"][suite]["cells"]
        row = f"{(Path(suite).name + ' ' + nodeid.split('::')[-1])[:51]:52}"
        row += "".join(f"{rate(c, p, w, nodeid):>12.0%}" for p, w in cells())
        print(row)
    print()
    print(f"candidate defaults, {HUNT_RUNS} runs: P(race seen failing) per race")
    print(f"{'candidate':28}{'min P':>8}{'mean P':>8}{'<95%':>6}{'cost':>7}  weakest")
    for name, r in result.items():
        probs = r["p_found"]
        weakest = min(probs, key=probs.get) if probs else "-"
        below = sum(p < 0.95 for p in probs.values())
        print(f"{name:28}{min(probs.values(), default=0):>8.1%}"
              f"{sum(probs.values()) / max(1, len(probs)):>8.1%}{below:>6}"
              f"{r['cost']:>6.2f}x  {weakest.split('::')[-1]} {probs.get(weakest, 0):.0%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10, help="runs per cell (default 10)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--suite", action="append", type=Path, help="a suite (default: races)")
    ap.add_argument("--json", type=Path, help="write the rates and the evaluation here")
    ap.add_argument("--from", dest="source", type=Path, help="saved rates: evaluate only")
    args = ap.parse_args()
    if args.source:
        data = json.loads(args.source.read_text())["rates"]
    else:
        suites = [s.resolve() for s in args.suite] if args.suite else default_suites()
        data = measure(suites, args.runs, args.seed)
    result = evaluate(data)
    show(data, result)
    if args.json:
        args.json.write_text(json.dumps({"rates": data, "candidates": result}, indent=1))


if __name__ == "__main__":
    main()
