"""flakehunt's own cost on a big suite: orchestration overhead and memory as runs grow.

    python3 benchmarks/bench_scale.py [--tests 2000] [--runs 10,50] [--start warm]

Writes a suite of N trivial tests (20 modules, some parametrized, some in classes),
hunts it with `flakehunt run . --runs R --no-classify` for each R, and prints per hunt:
the wall, the pure cost of its runs (bench_peers.overhead: a perfect packing of the
very same runs on this machine's CPUs, a lower bound, so the overhead is an upper
bound), the overhead, flakehunt's own CPU and its peak memory (at the hunt's end, and
at exit: with the JSON report built and written). Uses flakehunt's venv
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


# flakehunt's CLI, which writes its own peak memory at exit (the report's writing
# included; timing.flakehunt_peak_rss_mb is taken before it) to $BENCH_RSS_FILE
WRAP = ("import atexit, os, resource, runpy\n"
        "atexit.register(lambda: open(os.environ['BENCH_RSS_FILE'], 'w').write(\n"
        "    str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)))\n"
        "runpy.run_module('flakehunt', run_name='__main__', alter_sys=True)\n")


def hunt(root: Path, work: Path, runs: int, start: str) -> dict:
    out, rss = work / f"hunt-{runs}.json", work / f"rss-{runs}"
    env = {**bp.bench_env("flakehunt", work / "procs.log"), "BENCH_RSS_FILE": str(rss)}
    proc = bp.run([str(bp.venv_python("flakehunt")), "-c", WRAP, "run", ".", "--runs",
                   str(runs), "--seed", "1", "--no-classify", "--start", start, "--json",
                   str(out), "--no-progress", "--no-history"], root, env,
                  work / f"hunt-{runs}", bp.TIMEOUT)
    if proc.returncode not in (0, 1) or not out.exists():
        raise SystemExit(f"hunt failed: {proc.tail()}")
    report = json.loads(out.read_text())
    cost = bp.overhead(report["runs"], proc.wall)
    return {"runs": runs, "wall": round(proc.wall, 1), "ideal": round(cost["ideal"], 1),
            "overhead": round(cost["overhead"], 3), "timing": report["timing"],
            "peak_mb_at_exit": round(int(rss.read_text()) / 1024, 1) if rss.exists() else None,
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
              f"{t['flakehunt_cpu']} s, peak memory {t['flakehunt_peak_rss_mb']} MB at the "
              f"hunt's end, {r['peak_mb_at_exit']} MB with the report written")
    first, last = rows[0], rows[-1]
    end = [r["timing"]["flakehunt_peak_rss_mb"] for r in (first, last)]
    exit_ = [r["peak_mb_at_exit"] or float("nan") for r in (first, last)]
    print(f"memory for x{last['runs'] / first['runs']:g} the runs: x{end[1] / end[0]:.2f} at "
          f"the hunt's end, x{exit_[1] / exit_[0]:.2f} with the report written")
    (work / "scale.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
