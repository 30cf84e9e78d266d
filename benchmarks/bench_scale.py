"""flakehunt's own cost on a big suite: orchestration overhead and memory as runs grow.

    python3 benchmarks/bench_scale.py [--tests 2000] [--runs 10,50] [--start warm]

Writes a suite of N trivial tests (20 modules, some parametrized, some in classes),
hunts it with `flakehunt run . --runs R --no-classify` for each R, and prints per hunt:
the wall, the pure cost of its runs (bench_peers.overhead: a perfect packing of the
very same runs on this machine's CPUs, a lower bound, so the overhead is an upper
bound), the overhead, flakehunt's own CPU and its peak memory. Uses flakehunt's venv
of bench_peers (benchmarks/.venvs/flakehunt, built on first use).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_peers as bp  # noqa: E402

MODULE = '''import pytest


@pytest.mark.parametrize("n", range({per}))
def test_value(n):
    assert n >= 0


class TestGroup:
    def test_a(self):
        assert True

    def test_b(self):
        assert [1, 2] == [1, 2]
'''


def write_suite(root: Path, tests: int) -> None:
    root.mkdir(parents=True)
    (root / "pytest.ini").write_text("[pytest]\n")
    for i in range(20):
        (root / f"test_m{i:02d}.py").write_text(MODULE.format(per=max(1, tests // 20 - 2)))


def hunt(root: Path, work: Path, runs: int, start: str) -> dict:
    out = work / f"hunt-{runs}.json"
    proc = bp.run([str(bp.VENVS / "flakehunt" / "bin" / "flakehunt"), "run", ".", "--runs",
                   str(runs), "--seed", "1", "--no-classify", "--start", start, "--json",
                   str(out), "--no-progress", "--no-history"], root,
                  bp.bench_env("flakehunt", work / "procs.log"), work / f"hunt-{runs}",
                  bp.TIMEOUT)
    if proc.returncode not in (0, 1) or not out.exists():
        raise SystemExit(f"hunt failed: {proc.tail()}")
    report = json.loads(out.read_text())
    cost = bp.overhead(report["runs"], proc.wall)
    return {"runs": runs, "wall": round(proc.wall, 1), "ideal": round(cost["ideal"], 1),
            "overhead": round(cost["overhead"], 3), "timing": report["timing"],
            "tests": len(report["tests"]), "start": report["settings"].get("start")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tests", type=int, default=2000)
    ap.add_argument("--runs", default="10,50")
    ap.add_argument("--start", default="warm", choices=("warm", "fresh"))
    args = ap.parse_args()
    err = bp.ensure_venv("flakehunt")
    if err:
        bp.say(f"[venv] flakehunt: {err}")
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    write_suite(work / "suite", args.tests)
    rows = [hunt(work / "suite", work, int(r), args.start) for r in args.runs.split(",")]
    print(f"python3 benchmarks/bench_scale.py --tests {args.tests} --runs {args.runs} "
          f"--start {args.start}")
    for r in rows:
        t = r["timing"]
        print(f"{r['tests']} tests, --runs {r['runs']}: wall {r['wall']} s, pure cost of its "
              f"runs {r['ideal']} s, overhead {r['overhead']:.0%}; flakehunt's own CPU "
              f"{t['flakehunt_cpu']} s, peak memory {t['flakehunt_peak_rss_mb']} MB")
    first, last = rows[0]["timing"], rows[-1]["timing"]
    print(f"memory for x{rows[-1]['runs'] / rows[0]['runs']:g} the runs: "
          f"x{last['flakehunt_peak_rss_mb'] / first['flakehunt_peak_rss_mb']:.2f}")
    (work / "scale.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
