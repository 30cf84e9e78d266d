"""Benchmark: flakehunt against what a user would otherwise do, side by side.

Prints ratios measured in one invocation (these machines are noisy: compare
ratios, not seconds):

1. `flakehunt run SUITE --runs N` (classification included) against N
   sequential plain `pytest SUITE` runs - with the default six profiles and
   with only `none,single-core` (the slow profiles, `contended` and
   `quota-25`, cost wall time by design).
2. The cost of evidence gathering: the same sweep with the child probes on
   and off (target: at most 25% more).
3. The plugin's cost per test on a generated suite of trivial tests: plugin
   idle, recording without probes, recording with probes.
4. The plugin's import time when merely installed (target: below 5 ms).

    python benchmarks/bench_run.py [--runs 50] [--suite examples/websocket] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}


def timed(argv: list[str], cwd: Path) -> tuple[float, int, str]:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=clean_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    return time.perf_counter() - start, proc.returncode, proc.stdout


def naive_loop(suite: Path, runs: int) -> float:
    start = time.perf_counter()
    for _ in range(runs):
        subprocess.run([PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(suite)],
                       cwd=ROOT, env=clean_env(), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def hunt(suite: Path, runs: int, *extra: str) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        wall, code, text = timed([PY, "-m", "flakehunt", "run", str(suite), "--runs", str(runs),
                                  "--seed", "1", "--no-progress", "--json", str(out), *extra],
                                 ROOT)
        if code not in (0, 1):
            raise SystemExit(f"flakehunt failed ({code}):\n{text[-2000:]}")
        return wall, json.loads(out.read_text())


def per_test_cost(n: int = 400, py: str = PY) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "test_many.py").write_text(
            "import pytest\n\n@pytest.fixture\ndef thing():\n    return [1]\n\n"
            + "".join(f"def test_{i}(thing):\n    assert thing\n\n" for i in range(n)))
        base = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_many.py"]
        variants = {
            "plain (plugin idle)": base,
            "recording, probes off": base + [f"--flakehunt-out={d / 'a'}",
                                             "--flakehunt-evidence=off"],
            "recording, probes on": base + [f"--flakehunt-out={d / 'b'}"],
        }
        best: dict[str, float] = {}
        for _ in range(3):  # interleaved, best of 3
            for name, argv in variants.items():
                wall, code, _ = timed(argv, d)
                assert code == 0, name
                best[name] = min(best.get(name, 1e9), wall)
        return {k: v / n * 1e6 for k, v in best.items()}


def memory_growth(tests: int = 300, few: int = 8, many: int = 32,
                  py: str = PY) -> dict[str, float]:
    """flakehunt's own peak memory (from its JSON ``timing``) for a sweep of ``few``
    and of ``many`` runs over ``tests`` trivial tests, one flaky: flat means the
    ratio stays near 1 while the measured results grow ``many / few`` times."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "test_many.py").write_text(
            "import os, pytest\n\n@pytest.fixture\ndef thing():\n    return [1]\n\n"
            "def test_flaky():\n    assert os.getpid() % 2\n\n"
            + "".join(f"def test_{i}(thing):\n    assert thing\n\n" for i in range(tests)))
        peak = {}
        for runs in (few, many):
            out = d / f"r{runs}.json"
            wall, code, text = timed([py, "-m", "flakehunt", "run", "test_many.py", "--runs",
                                      str(runs), "--min-rate", "0", "--no-classify",
                                      "--workers", "0", "--profiles", "none", "--seed", "1",
                                      "--no-progress", "--no-history", "--json", str(out)], d)
            if code not in (0, 1):
                raise SystemExit(f"flakehunt failed ({code}):\n{text[-2000:]}")
            peak[runs] = json.loads(out.read_text())["timing"]["flakehunt_peak_rss_mb"]
        return {"tests": tests, f"peak_mb_{few}_runs": peak[few],
                f"peak_mb_{many}_runs": peak[many], "ratio": peak[many] / peak[few],
                "results_ratio": many / few}


def import_cost(py: str = PY) -> float:
    """Microseconds to import flakehunt.plugin, from -X importtime (best of 5),
    with bytecode compiled as an installed package has it."""
    subprocess.run([py, "-m", "compileall", "-q", str(ROOT / "flakehunt")], check=True)
    best = 1e9
    for _ in range(5):
        proc = subprocess.run([py, "-X", "importtime", "-c", "import pytest, flakehunt.plugin"],
                              capture_output=True, text=True, env=clean_env())
        for line in proc.stderr.splitlines():
            m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s+flakehunt\.plugin$", line.strip())
            if m:
                best = min(best, int(m.group(1)))
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--suite", default="examples/websocket")
    ap.add_argument("--json")
    args = ap.parse_args()
    suite = Path(args.suite)
    print(f"suite {suite}, {args.runs} runs, {os.cpu_count()} CPUs", flush=True)

    # the naive loop in two halves around the hunt, so drift in the machine's speed
    # during the benchmark weighs on both sides alike
    first = args.runs // 2
    naive = naive_loop(suite, first)
    full, report = hunt(suite, args.runs)
    light, _ = hunt(suite, args.runs, "--profiles", "none,single-core")
    naive += naive_loop(suite, args.runs - first)
    print(f"naive loop: {args.runs} sequential plain pytest runs  {naive:7.1f} s", flush=True)
    flaky = [t["nodeid"].split("::")[-1] + f" ({t['category']})" for t in report["tests"]
             if t["verdict"] == "flaky"]
    follow = sum(1 for r in report["runs"] if r["purpose"] != "sweep")
    print(f"flakehunt run --runs {args.runs} (classified, +{follow} follow-up runs)"
          f"  {full:7.1f} s", flush=True)
    with_ev, _ = hunt(suite, args.runs, "--no-classify")
    without_ev, _ = hunt(suite, args.runs, "--no-classify", "--no-evidence")
    print(f"sweep only, probes on {with_ev:.1f} s, probes off {without_ev:.1f} s", flush=True)
    cost = per_test_cost()
    imp = import_cost()

    print(f"the same, --profiles none,single-core  {light:7.1f} s", flush=True)
    rows = [
        ("flakehunt / naive loop (wall)", full / naive, "<= 1.0"),
        ("  with --profiles none,single-core", light / naive, "<= 1.0"),
        ("sweep with evidence / without", with_ev / without_ev, "<= 1.25"),
    ]
    print()
    print(f"{'measure':44} {'ratio':>8}  target")
    for name, ratio, target in rows:
        print(f"{name:44} {ratio:8.2f}  {target}")
    print()
    print(f"flaky found: {len(flaky)}: {', '.join(flaky)}")
    print("per-test wall cost on 400 trivial tests (best of 3):")
    for name, us in cost.items():
        print(f"  {name:24} {us:8.0f} us/test")
    plain = cost["plain (plugin idle)"]
    print(f"  probes add {cost['recording, probes on'] - plain:.0f} us/test over plain")
    print(f"plugin import when installed: {imp / 1000:.2f} ms (target < 5 ms)")
    mem = memory_growth()
    print(f"flakehunt's peak memory: {mem['peak_mb_8_runs']:.1f} MB for 8 runs, "
          f"{mem['peak_mb_32_runs']:.1f} MB for 32 runs of {mem['tests']} tests "
          f"(x{mem['ratio']:.2f} for x{mem['results_ratio']:.0f} the results)")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "runs": args.runs, "suite": str(suite), "naive_s": naive, "flakehunt_s": full,
            "flakehunt_light_profiles_s": light,
            "sweep_evidence_s": with_ev, "sweep_no_evidence_s": without_ev,
            "per_test_us": cost, "plugin_import_us": imp, "memory": mem,
            "flaky": flaky}, indent=2))


if __name__ == "__main__":
    main()
