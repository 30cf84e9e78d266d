"""flakehunt at equal detection power: `flakehunt run --runs 50` against the naive loop
of 50 shuffled pytest runs, with warm and with fresh starts, side by side.

    python3 benchmarks/bench_equal_power.py [--k 3] [--runs 50]
        [--suites websocket,loop_module_scope_modules] [--json PATH]

Suites: `websocket` (the shipped example, 4 seeded flaky tests), `generated` (the
424-test suite of benchmarks/gen_suite.py), the name of any corpus suite
(benchmarks/corpus/NAME, scored against its truth.toml) or `real:NAME`, a project of
benchmarks/real_projects.toml (set up as real_projects.py does, from --mirror when
given; its known victims are the truth: found flaky, and classified right when called
state-leak with a polluter that really fails the victim in one plain process while the
victim alone passes). Each contender runs in its own venv (benchmarks/.venvs/, built by
bench_peers.ensure_venv on first use), a real project's runs in the project's venv:
there the naive loop shuffles by passing the collected test ids in a seeded random
order (`-p no:randomly`: nothing is installed into the project's venv), and sessions
are the runs each contender started (the session and interpreter hooks live in the
bench venvs only):

- naive-loop: N x `pytest -p randomly --randomly-seed=...`, one after another;
- flakehunt: `flakehunt run . --runs N --seed S` with its defaults (warm starts);
- flakehunt-fresh: the same with `--start fresh` (every run a fresh interpreter).

For every hunt k of K (seed SEED+k) the three run one after another, so a change in the
machine's load hits all three alike: compare the ratios. Per contender: wall and CPU
seconds (the children's user+sys; a real project's polluter checks, run after the hunt to
score it, are not counted), pytest sessions, interpreters started that imported pytest
(fresh runs, fresh xdist workers and flakehunt's warm parents, seen by the .pth hook of
bench_peers; for a real project, from the hunt's own record), recall (seeded flaky
tests seen both passing and failing / reported flaky), and for flakehunt the
classification (category, fixture and polluter right, as benchmarks/score_corpus.py
judges it). Prints a table and the target
(flakehunt's wall <= 0.35x the naive loop's at equal recall); writes every number to
--json (default benchmarks/last-equal-power.json).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_peers as bp  # noqa: E402
import gen_suite  # noqa: E402
import real_projects as rp  # noqa: E402
import score_corpus as sc  # noqa: E402

CONTENDERS = ("naive-loop", "flakehunt", "flakehunt-fresh")
TARGET = 0.35


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def suite_truth(name: str, root: Path, seed: int) -> sc.Truth:
    """Copy the suite to ``root``; its truth."""
    if name == "websocket":
        shutil.copytree(bp.ROOT / "examples" / "websocket", root,
                        ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
        manifest = bp.WEBSOCKET_MANIFEST
    elif name == "generated":
        manifest = gen_suite.generate(root, seed)
    else:
        shutil.copytree(sc.CORPUS / name, root,
                        ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
        return sc.load_truth(root)
    return sc.Truth({t: sc.Expect(m["category"], (m["fixture"],) if m["fixture"] else
                                  (sc.NO_FIXTURE,), tuple(m["polluter"] or ()))
                     for t, m in manifest.items()})


@dataclass(frozen=True)
class Real:
    """A real project as the bench runs it: its checkout, venv and selection."""

    project: rp.Project
    src: Path

    @property
    def python(self) -> str:
        return str(rp.python_of(self.project))

    def env(self, contender: str, proc_log: Path) -> dict[str, str]:
        """The bench env without the bench venv's hooks (the project's venv has none)."""
        env = bp.bench_env(contender, proc_log)
        for key in ("PYTEST_PLUGINS", "BENCH_PROC_LOG", "VIRTUAL_ENV"):
            env.pop(key, None)
        return env


def real_truth(real: Real) -> sc.Truth:
    return sc.Truth({v.nodeid: sc.Expect("state-leak", (sc.NO_FIXTURE,), v.polluters)
                     for v in real.project.victims})


def naive(root: Path, truth: sc.Truth, work: Path, seed: int, runs: int,
          real: Real | None = None) -> dict[str, Any]:
    env = (real.env("naive-loop", work / "procs.log") if real
           else bp.bench_env("naive-loop", work / "procs.log"))
    ids = collect(root, real) if real else []
    seen: dict[str, set[str]] = {}
    sessions = 0
    for i in range(1, runs + 1):
        xml = work / f"run{i}.xml"
        if real:
            order = list(ids)
            random.Random(seed * 1000 + i).shuffle(order)
            argv = [real.python, "-m", "pytest", "-q", "-p", "no:randomly", *order]
        else:
            argv = [str(bp.venv_python("naive-loop")), "-m", "pytest", "-q", "-p", "randomly",
                    f"--randomly-seed={seed * 1000 + i}"]
        proc = bp.run([*argv, "-p", "no:cacheprovider", f"--junitxml={xml}"], root, env,
                      work / f"run{i}", bp.TIMEOUT)
        if proc.returncode not in (0, 1):
            return {"error": f"run {i}: exit {proc.returncode}: {proc.tail()}"}
        sessions += 1
        by_key: dict[tuple[str, str], str] = {bp.junit_key(t): t for t in truth.flaky}
        for nodeid, outcome in bp.junit_outcomes(xml, by_key):
            seen.setdefault(nodeid, set()).add(outcome)
    found = [t for t in truth.flaky if len(seen.get(t, ())) == 2]
    return {"found": len(found), "classified": 0, "sessions": sessions,
            "interpreters": sessions + bool(real)}  # a real project's: its collection too


def flakehunt(root: Path, truth: sc.Truth, work: Path, seed: int, runs: int,
              start: str, clock: Clock, real: Real | None = None) -> dict[str, Any]:
    out = work / "hunt.json"
    where = [*real.project.selection, "--python", real.python] if real else ["."]
    env = (real.env("flakehunt", work / "procs.log") if real
           else bp.bench_env("flakehunt", work / "procs.log"))
    proc = bp.run([str(bp.VENVS / "flakehunt" / "bin" / "flakehunt"), "run", *where, "--runs",
                   str(runs), "--seed", str(seed), "--start", start, "--json", str(out),
                   "--no-progress", "--no-history"], root, env, work / "flakehunt", bp.TIMEOUT)
    spent = clock.read()  # before the scoring, whose own pytest runs are not the hunt's
    if proc.returncode not in (0, 1) or not out.exists():
        return {"error": f"exit {proc.returncode}: {proc.tail()}"}
    report = json.loads(out.read_text())
    runs_done = report["runs"]
    began = report["settings"].get("start") or {}  # how its runs were started
    got: dict[str, Any] = {
        **spent,
        "interpreters": 1 + began.get("fresh", 0) + (began.get("pool") or {}).get("parents", 0)
        + (began.get("xdist_workers") or {}).get("fresh", 0),
        "sessions": len(runs_done) + 1,
        "sweep_runs": sum(r["purpose"] == "sweep" for r in runs_done),
        "follow_ups": sum(r["purpose"] != "sweep" for r in runs_done),
        "start": report["settings"].get("start"), "timing": report.get("timing")}
    if real:
        rows = rp.score(real.project, report, rp.check_polluters(real.project, real.src, report))
        return {**got, "found": sum(r["found"] for r in rows),
                "classified": sum(r["ok"] for r in rows), "rows": rows}
    score = sc.score_hunt(root.name, seed, report, truth)
    classified = sum(1 for t in truth.flaky if t not in {m["test"] for m in score.missed}
                     and t not in {w["test"] for w in score.wrong})
    return {**got, "found": score.found, "classified": classified, "wrong": score.wrong,
            "false_flaky": score.false_flaky}


class Clock:
    """Wall and CPU seconds (user+sys of every waited-for descendant) since made."""

    def __init__(self) -> None:
        self.cpu0, self.t0 = children_cpu(), time.monotonic()

    def read(self) -> dict[str, float]:
        return {"wall": round(time.monotonic() - self.t0, 2),
                "cpu": round(children_cpu() - self.cpu0, 2)}


def interpreters(log: Path) -> int:
    """Interpreters started that imported pytest, as the bench venvs' hook saw them:
    fresh pytest runs, fresh xdist workers and flakehunt's warm parents (not the tool's
    own command line; a warm-started run or worker is a fork, not an interpreter)."""
    kinds = bp.count_kinds(log)
    return kinds["pytest"] + kinds["xdist-worker"] + kinds["helper"]


def measure(contender: str, root: Path, truth: sc.Truth, work: Path, seed: int,
            runs: int, real: Real | None = None) -> dict[str, Any]:
    work.mkdir(parents=True)
    clock = Clock()
    if contender == "naive-loop":
        got = naive(root, truth, work, seed, runs, real)
    else:
        got = flakehunt(root, truth, work, seed, runs,
                        "fresh" if contender == "flakehunt-fresh" else "warm", clock, real)
    got = {**clock.read(), **got}  # a contender that stopped the clock itself keeps it
    if not real:
        got["interpreters"] = interpreters(work / "procs.log")
    got.update(seed=seed, expected=len(truth.flaky))
    bp.say(f"[run] {contender} seed {seed}: wall {got['wall']} s, cpu {got['cpu']} s, "
           f"found {got.get('found')}/{len(truth.flaky)}")
    return got


def table(suite: str, tests: int, truth: sc.Truth, results: dict[str, list[dict]]) -> list[str]:
    def mean(c: str, key: str) -> float:
        values = [r[key] for r in results.get(c, [])
                  if r.get(key) is not None and "error" not in r]
        return statistics.mean(values) if values else float("nan")

    k = len(results["naive-loop"])
    lines = [f"suite {suite}: {tests} tests, {len(truth.flaky)} seeded flaky; K={k} hunts each, "
             "means; x = / the naive loop's, measured in the same rounds",
             f"{'contender':16} {'wall s':>7} {'x':>5} {'cpu s':>7} {'x':>5} {'sessions':>8} "
             f"{'interp':>6} {'recall':>6} {'all k/K':>7} {'classified':>10}"]
    for c, rows in results.items():
        ok = [r for r in rows if "error" not in r]
        recall = sum(r["found"] for r in ok) / max(1, sum(r["expected"] for r in ok))
        all_found = sum(r["found"] == r["expected"] for r in ok)
        lines.append(
            f"{c:16} {mean(c, 'wall'):7.1f} {mean(c, 'wall') / mean('naive-loop', 'wall'):5.2f} "
            f"{mean(c, 'cpu'):7.1f} {mean(c, 'cpu') / mean('naive-loop', 'cpu'):5.2f} "
            f"{mean(c, 'sessions'):8.1f} {mean(c, 'interpreters'):6.1f} {recall:6.0%} "
            f"{all_found:>3}/{len(rows):<3} "
            f"{mean(c, 'classified'):5.1f}/{len(truth.flaky):<4}"
            + (f" errors: {[r['error'] for r in rows if 'error' in r]}" if len(ok) < len(rows)
               else ""))
    warm = mean("flakehunt", "wall")
    if "flakehunt-fresh" in results:
        fresh = mean("flakehunt-fresh", "wall")
        lines.append(f"  warm vs fresh flakehunt: wall {warm / fresh:.2f}x, cpu "
                     f"{mean('flakehunt', 'cpu') / mean('flakehunt-fresh', 'cpu'):.2f}x")
    x = warm / mean("naive-loop", "wall")
    naive_recall = [r["found"] for r in results["naive-loop"] if "error" not in r]
    fh_recall = [r["found"] for r in results["flakehunt"] if "error" not in r]
    equal = sum(fh_recall) >= sum(naive_recall)
    lines.append(f"  target: flakehunt wall <= {TARGET}x naive at equal recall: "
                 + ("MET" if x <= TARGET and equal else "MISSED")
                 + f" ({x:.2f}x; recall {sum(fh_recall)} vs naive {sum(naive_recall)} found)")
    lines.append(floor(mean("flakehunt", "cpu"), mean("naive-loop", "wall")))
    return lines


def floor(cpu: float, naive_wall: float, cpus: int | None = None) -> str:
    """What the hunt's CPU alone allows: spread perfectly over the machine's CPUs it
    takes cpu / cpus seconds of wall, and no packing goes below that."""
    n = cpus or os.cpu_count() or 1
    return (f"  floor: flakehunt's {cpu:.1f} CPU-s over {n} CPUs take at least "
            f"{cpu / n:.1f} s, {cpu / n / naive_wall:.2f}x the naive loop's wall; "
            f"{TARGET}x needs a hunt of at most {TARGET * naive_wall * n:.1f} CPU-s here")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suites", default="websocket,loop_module_scope_modules")
    ap.add_argument("--k", type=int, default=3, help="hunts per contender and suite")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--seed", type=int, default=101)
    ap.add_argument("--contenders", default=",".join(CONTENDERS))
    ap.add_argument("--json", default=str(bp.ROOT / "benchmarks" / "last-equal-power.json"))
    ap.add_argument("--mirror", type=Path, help="local git mirrors for real:NAME suites "
                    "(<owner>+<name>/repo, as real_projects.py --mirror)")
    args = ap.parse_args()
    contenders = [c for c in args.contenders.split(",") if c]
    for venv in ("naive-loop", "flakehunt"):
        err = bp.ensure_venv(venv)
        if err:
            bp.say(f"[venv] {venv}: {err}")
            return 2
    work = Path(tempfile.mkdtemp(prefix="bench-equal-power-"))
    bp.say(f"[bench] work dir {work}")
    report: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "runs": args.runs,
                              "k": args.k, "machine": machine(), "suites": {}}
    lines = []
    for name in [s for s in args.suites.split(",") if s]:
        real = None
        if name.startswith("real:"):
            project = next((p for p in rp.load() if p.name == name[5:]), None)
            if project is None:
                bp.say(f"[bench] no project {name[5:]} in {rp.DATA}")
                return 2
            real = Real(project, rp.setup(project, args.mirror))
            root, truth = real.src, real_truth(real)
        else:
            root = work / "suites" / name
            truth = suite_truth(name, root, args.seed)
        tests = len(collect(root, real))
        results: dict[str, list[dict]] = {c: [] for c in contenders}
        for k in range(args.k):
            for c in contenders:
                results[c].append(measure(c, root, truth, work / name / f"{c}-{k}",
                                          args.seed + k, args.runs, real))
        lines += table(name, tests, truth, results) + [""]
        report["suites"][name] = {"tests": tests, "results": results}
    print(f"{report['date']}, {report['machine']}; python3 benchmarks/bench_equal_power.py "
          f"--k {args.k} --runs {args.runs} --suites {args.suites}"
          + (f" --contenders {args.contenders}" if contenders != list(CONTENDERS) else ""))
    print("\n".join(lines))
    Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


def collect(root: Path, real: Real | None = None) -> list[str]:
    import subprocess

    python = real.python if real else str(bp.venv_python("naive-loop"))
    proc = subprocess.run([python, "-m", "pytest", "--collect-only", "-q", "-p", "no:randomly",
                           "-p", "no:cacheprovider", *(real.project.selection if real else ())],
                          cwd=root, capture_output=True, text=True, check=False)
    return [line for line in proc.stdout.splitlines() if "::" in line]


def machine() -> str:
    import os
    import platform

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"load average {load:.1f} at the start")


if __name__ == "__main__":
    sys.exit(main())
