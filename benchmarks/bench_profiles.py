"""Benchmark: what each perturbation profile does to which kind of race.

On the timing-sensitive tests in examples/races (a thread-vs-deadline race, a
thread data race, an asyncio ack-vs-heartbeat race, a cross-worker shared-file
race), runs N sweeps per profile (serial) and one more with 2 xdist workers,
and prints each test's failure rate under each profile against `none`, with
the profile's wall-time overhead per run. Runs one at a time (--jobs 1): the
point is what the profile does, not what neighbouring runs do.

    python benchmarks/bench_profiles.py [--runs 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "examples" / "races"


def hunt(runs: int, profile: str, workers: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        proc = subprocess.run(
            [sys.executable, "-m", "flakehunt", "run", str(SUITE), "--runs", str(runs),
             "--seed", "1", "--profiles", profile, "--workers", str(workers), "--jobs", "1",
             "--no-classify", "--no-progress", "--json", str(out)],
            cwd=ROOT, env=env, capture_output=True, text=True)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"flakehunt failed for {profile}: {proc.stderr[-1500:]}")
        return json.loads(out.read_text())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--json")
    args = ap.parse_args()
    from flakehunt.profiles import PROFILES

    columns = [(name, 0) for name in PROFILES] + [("none", 2)]
    results = {}
    for name, workers in columns:
        label = name if workers == 0 else f"{name} -n{workers}"
        print(f"running {label}...", file=sys.stderr, flush=True)
        results[label] = hunt(args.runs, name, workers)
    labels = list(results)
    tests = [t["nodeid"] for t in results["none"]["tests"]]
    width = max(len(t.split("::")[-1]) for t in tests) + 2
    print(f"failure rate over {args.runs} runs per profile (serial unless -n)")
    print(f"{'test':{width}}" + "".join(f"{lab:>14}" for lab in labels))
    for nodeid in tests:
        row = f"{nodeid.split('::')[-1]:{width}}"
        for lab in labels:
            t = next(t for t in results[lab]["tests"] if t["nodeid"] == nodeid)
            ran = t["runs"] - t["skipped"]
            row += f"{(t['failed'] + t['errored']) / ran if ran else 0:>14.0%}"
        print(row)
    base = mean_duration(results["none"])
    row = f"{'wall per run vs none':{width}}"
    for lab in labels:
        row += f"{mean_duration(results[lab]) / base:>13.2f}x"
    print(row)
    print(f"{'mechanism':{width}}" + "".join(f"{mechanism(results[lab])[:13]:>14}"
                                             for lab in labels))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


def mean_duration(report: dict) -> float:
    runs = [r["duration"] for r in report["runs"]]
    return sum(runs) / len(runs)


def mechanism(report: dict) -> str:
    applied = report["runs"][0]["profile_applied"]
    parent = applied.get("parent", {}).get("mechanism")
    if parent:
        return parent
    main = applied.get("main", {})
    for key in ("burners", "jitter_ms", "switch_interval"):
        if key in main:
            return key
    cpus = main.get("cpus") or {}
    return cpus.get("mechanism", "-")


if __name__ == "__main__":
    main()
