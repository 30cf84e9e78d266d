"""Benchmark: choose the sweep's defaults (profile set, share of xdist runs) on the corpus.

Step 1 gathers, for every flaky test of the corpus (its ``truth.toml``), its failure
rate in each cell (profile, xdist workers): from saved default hunts (``--hunts DIR`` of
``<suite>-<seed>.json``, as ``score_corpus.py --keep`` writes them; every sweep run's
per-test outcome is in them) and, for profiles the default does not run, measured
here (``--measure contended``: ``--runs R`` serial runs of each ``race_*`` suite per
profile, one run at a time, classification off). A serial cell measured nowhere counts
as the ``none`` rate (right for order dependence, which no profile moves).

Step 2 takes candidate defaults, lays out the plan ``flakehunt run --runs 50`` would run
with each (``flakehunt.plan.sweep``), and computes from the rates each flaky test's
probability of being seen failing at
least once in the 50 runs, ``1 - prod((1 - rate[cell]) ** runs[cell])``, and the plan's
cost in CPU-seconds relative to the current default. A profile with xdist workers is
not measured; its rate is modelled as independent levers,
``1 - (1 - rate[profile]) * (1 - rate[none -n2])``.

    python benchmarks/score_corpus.py --keep HUNTS        # the default hunts, saved
    python benchmarks/bench_defaults.py --hunts HUNTS --measure contended [--runs 10]
    python benchmarks/bench_defaults.py --hunts HUNTS --from out.json   # step 2 only

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


def flaky_tests(suite: Path) -> set[str]:
    """The flaky tests a truth file names."""
    truth = suite / "truth.toml"
    if not truth.exists():
        return set()
    return {f["test"] for f in tomllib.loads(truth.read_text()).get("flaky", [])}


def from_hunts(folder: Path) -> dict:
    """Cells of every corpus suite from saved hunts: per (profile, workers), per test,
    [bad, ran] over the sweep runs, and the mean run wall time."""
    data: dict = {"suites": {}}
    for path in sorted(folder.glob("*.json")):
        name = path.stem.rsplit("-", 1)[0]
        suite = CORPUS / name
        if not suite.is_dir():
            continue
        entry = data["suites"].setdefault(str(suite.relative_to(ROOT)), {
            "races": sorted(flaky_tests(suite)), "cells": {}})
        for run in json.loads(path.read_text())["runs"]:
            if run.get("purpose") != "sweep" or run.get("status") not in ("ok", "crashed"):
                continue
            where = [label(run["profile"], run["workers"])]
            if run["workers"]:
                where.append(label("any", run["workers"]))
            for lab in where:
                cell = entry["cells"].setdefault(lab, {"tests": {}, "walls": []})
                cell["walls"].append(run["duration"])
                for r in run.get("results", []):
                    if r["outcome"] == "skipped":
                        continue
                    counts = cell["tests"].setdefault(r["nodeid"], [0, 0])
                    counts[0] += r["outcome"] in ("failed", "error", "crashed")
                    counts[1] += 1
    for entry in data["suites"].values():
        for cell in entry["cells"].values():
            walls = cell.pop("walls")
            cell["run_wall"] = sum(walls) / len(walls)
    return data


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
    """The columns: every profile serially, and two xdist workers under any profile."""
    from flakehunt.profiles import PROFILES
    return [(name, 0) for name in PROFILES] + [("any", 2)]


def label(profile: str, workers: int) -> str:
    return profile if workers == 0 else f"{profile} -n{workers}"


def measure(data: dict, suites: list[Path], profiles: list[str], runs: int, seed: int) -> None:
    """Measure serial cells of ``profiles`` on ``suites`` into ``data``."""
    if not profiles:
        return
    for suite in suites:
        entry = data["suites"].setdefault(str(suite.relative_to(ROOT)), {
            "races": sorted(flaky_tests(suite)), "cells": {}})
        for profile in profiles:
            print(f"{suite.name}: {profile}...", file=sys.stderr, flush=True)
            entry["cells"][profile] = measure_cell(suite, profile, 0, runs, seed)


# -- step 2: the candidates -------------------------------------------------------------------

PREVIOUS = ["none", "single-core", "quota-25", "jitter", "threads"]  # before issue 12


def candidates() -> dict[str, dict]:
    """Candidate defaults: the previous one first (the costs are against it), then
    single changes to it, then the chosen default (``profiles.DEFAULT`` and
    ``plan.SERIAL_WEIGHT``) and single changes to that."""
    from flakehunt import plan
    from flakehunt.profiles import DEFAULT

    def swap(base: list[str], old: str, new: str) -> list[str]:
        return [new if p == old else p for p in base]

    chosen = list(DEFAULT)
    return {
        "previous (single-core, 7:1)": {"profiles": PREVIOUS, "serial_weight": 7},
        "previous + contended": {"profiles": [*PREVIOUS, "contended"], "serial_weight": 7},
        "previous, contended for s-c": {"profiles": swap(PREVIOUS, "single-core", "contended"),
                                        "serial_weight": 7},
        "previous, xdist 3:1": {"profiles": PREVIOUS, "serial_weight": 3},
        "previous, quota-10 for s-c": {"profiles": swap(PREVIOUS, "single-core", "quota-10"),
                                       "serial_weight": 7},
        "previous, quota-10 for q-25": {"profiles": swap(PREVIOUS, "quota-25", "quota-10"),
                                        "serial_weight": 7},
        f"chosen ({plan.SERIAL_WEIGHT}:1)": {"profiles": chosen,
                                             "serial_weight": plan.SERIAL_WEIGHT},
        "chosen + contended": {"profiles": [*chosen, "contended"],
                               "serial_weight": plan.SERIAL_WEIGHT},
        "chosen + single-core": {"profiles": [*chosen, "single-core"],
                                 "serial_weight": plan.SERIAL_WEIGHT},
        "chosen, xdist 2:1": {"profiles": chosen, "serial_weight": 2},
        "chosen, xdist 7:1": {"profiles": chosen, "serial_weight": 7},
        "chosen without jitter": {"profiles": [p for p in chosen if p != "jitter"],
                                  "serial_weight": plan.SERIAL_WEIGHT},
        "chosen without threads": {"profiles": [p for p in chosen if p != "threads"],
                                   "serial_weight": plan.SERIAL_WEIGHT},
    }


def measured(data: dict, profiles: list[str]) -> bool:
    """Every profile has a serial cell in some suite (else its rates would be guesses)."""
    have = {lab for e in data["suites"].values() for lab in e["cells"]}
    return all(p in have for p in profiles)


def plan_cells(profiles: list[str], serial_weight: int, seed: int) -> dict[tuple[str, int], int]:
    """How many of the 50 planned runs fall in each (profile, workers) cell."""
    from flakehunt import plan
    from flakehunt.profiles import PROFILES
    specs = plan.sweep(plan.PlanSettings(
        runs=HUNT_RUNS, seed=seed, workers=(0, 2), profiles=tuple(profiles),
        weights={p: PROFILES[p].weight for p in profiles}, serial_weight=serial_weight))
    counts: dict[tuple[str, int], int] = {}
    for s in specs:
        counts[(s.profile, s.workers)] = counts.get((s.profile, s.workers), 0) + 1
    return counts


def rate(cells_: dict, profile: str, workers: int, nodeid: str) -> float:
    """A serial cell's measured rate (measured nowhere: the ``none`` rate). With xdist
    workers, the profile and the workers as independent levers, the workers' rate
    pooled over every profile (a hunt has a handful of parallel runs per profile);
    ``profile == "any"`` is that pooled rate itself."""
    def r(lab: str) -> float | None:
        bad, ran = cells_.get(lab, {}).get("tests", {}).get(nodeid, (0, 0))
        return bad / ran if ran else None
    pooled = (r(label("any", workers)) or 0.0) if workers else 0.0
    if profile == "any":
        return pooled
    serial = r(profile)
    serial = serial if serial is not None else (r("none") or 0.0)
    return 1 - (1 - serial) * (1 - pooled)


def cost(cells_: dict, counts: dict[tuple[str, int], int], whole: bool = False) -> float:
    """CPU-seconds of the plan: each run's wall time times the CPUs it keeps busy, or
    with ``whole``, at least one CPU (a run's slot while it starts and collects at full
    speed); a cell not measured: the serial cell's wall, scaled as workers scale it."""
    from flakehunt.profiles import PROFILES
    def wall(lab: str) -> float | None:
        return cells_.get(lab, {}).get("run_wall")
    base = wall("none") or 1.0
    total = 0.0
    for (profile, workers), n in counts.items():
        w = wall(label(profile, workers))
        if w is None:
            w = (wall(profile) or base) * ((wall(label("any", workers)) or base) / base
                                           if workers else 1.0)
        cpus = PROFILES[profile].cpus_used(workers)
        total += n * w * (max(1.0, cpus) if whole else cpus)
    return total


def races(data: dict) -> list[tuple[str, str]]:
    """(suite, nodeid) of every flaky test the truth names, in suites with rates."""
    return [(suite, n) for suite, entry in data["suites"].items() if entry["cells"]
            for n in entry["races"]]


def evaluate(data: dict) -> dict:
    result = {}
    base_cost = None
    for name, cand in candidates().items():
        if not measured(data, cand["profiles"]):
            continue
        counts = plan_cells(cand["profiles"], cand["serial_weight"], data["seed"])
        probs = {}
        spend = sum(cost(entry["cells"], counts) for entry in data["suites"].values())
        slots = sum(cost(entry["cells"], counts, True) for entry in data["suites"].values())
        for suite, nodeid in races(data):
            cells_ = data["suites"][suite]["cells"]
            miss = math.prod((1 - rate(cells_, p, w, nodeid)) ** n for (p, w), n in counts.items())
            probs[f"{suite}::{nodeid}"] = 1 - miss
        base_cost = base_cost or (spend, slots)
        result[name] = {"profiles": cand["profiles"], "serial_weight": cand["serial_weight"],
                        "cells": {label(*k): v for k, v in sorted(counts.items())},
                        "p_found": probs, "cost": spend / base_cost[0],
                        "slot_cost": slots / base_cost[1]}
    return result


def show(data: dict, result: dict) -> None:
    labels = [label(p, w) for p, w in cells()]
    print("failure rate per cell (serial unless -n; parallel cells modelled unless measured)")
    print(f"{'race':52}" + "".join(f"{lab:>12}" for lab in labels))
    for suite, nodeid in races(data):
        c = data["suites"][suite]["cells"]
        row = f"{(Path(suite).name + ' ' + nodeid.split('::')[-1])[:51]:52}"
        row += "".join(f"{rate(c, p, w, nodeid):>12.0%}" for p, w in cells())
        print(row)
    print()
    print(f"candidate defaults, {HUNT_RUNS} runs: P(a flaky test is seen failing); cost "
          "against the previous default in CPU-seconds (cpu) and with every run holding at "
          "least a CPU (slots)")
    print(f"{'candidate':30}{'min P':>8}{'mean P':>8}{'<95%':>6}{'cpu':>7}{'slots':>7}  weakest")
    for name, r in result.items():
        probs = r["p_found"]
        weakest = min(probs, key=probs.get) if probs else "-"
        below = sum(p < 0.95 for p in probs.values())
        print(f"{name:30}{min(probs.values(), default=0):>8.1%}"
              f"{sum(probs.values()) / max(1, len(probs)):>8.1%}{below:>6}"
              f"{r['cost']:>6.2f}x{r['slot_cost']:>6.2f}x  {weakest.split('::')[-1]} "
              f"{probs.get(weakest, 0):.0%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hunts", type=Path, required=True,
                    help="saved default hunts of the corpus (score_corpus.py --keep DIR)")
    ap.add_argument("--measure", action="append", default=[],
                    help="a profile to measure on the race suites (repeatable)")
    ap.add_argument("--runs", type=int, default=10, help="runs per measured cell")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path, help="write the rates and the evaluation here")
    ap.add_argument("--from", dest="source", type=Path, help="saved rates: evaluate only")
    args = ap.parse_args()
    if args.source:
        data = json.loads(args.source.read_text())["rates"]
        measure(data, sorted(CORPUS.glob("race_*")), args.measure, args.runs, args.seed)
    else:
        data = from_hunts(args.hunts)
        measure(data, sorted(CORPUS.glob("race_*")), args.measure, args.runs, args.seed)
    data["seed"] = args.seed
    result = evaluate(data)
    show(data, result)
    if args.json:
        args.json.write_text(json.dumps({"rates": data, "candidates": result}, indent=1))


if __name__ == "__main__":
    main()
