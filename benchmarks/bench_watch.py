"""The child-side watch's cost (flakehunt.watch: an audit hook in every child run).

Runs a 400-test suite, each test writing a file, in a recording child pytest with
the watch's hook and without it, alternating, and prints the best wall of each
and their ratio (ratios, not seconds: this machine is shared).

    python benchmarks/bench_watch.py [--rounds 7] [--tests 400]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import sys, tempfile, pytest
if sys.argv[1] == "off":
    import flakehunt.watch as w
    w.Plugin.__init__ = lambda self, config, out: setattr(
        self, "watch", w.Watch(out, str(config.rootpath), []))
sys.exit(pytest.main(["-q", "-p", "flakehunt", "-p", "no:cacheprovider",
                      "--flakehunt-out=" + tempfile.mkdtemp(), "test_many.py"]))
"""


def one(where: Path, mode: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", CHILD, mode], cwd=where, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--tests", type=int, default=400)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        (where / "pytest.ini").write_text(
            "[pytest]\nasyncio_default_fixture_loop_scope = function\n")
        (where / "test_many.py").write_text("".join(
            f"def test_{i}(tmp_path):\n    (tmp_path / 'f').write_text('x')\n"
            for i in range(args.tests)))
        best = {"on": float("inf"), "off": float("inf")}
        for i in range(args.rounds):
            for mode in (("off", "on") if i % 2 else ("on", "off")):
                best[mode] = min(best[mode], one(where, mode))
    print(f"{args.tests} tests, best of {args.rounds}: watch on {best['on']:.3f} s, "
          f"off {best['off']:.3f} s, ratio {best['on'] / best['off']:.3f}")


if __name__ == "__main__":
    main()
