"""What a warm run costs, and how much of it is flakehunt's: side by side, one parent.

    python3 benchmarks/bench_evidence.py [SUITE_DIR] [--python PY] [--forks 7] [-- ARGS]

A warm parent made the way flakehunt makes one (`flakehunt.warm.import_base` on the
suite's interpreter, the suite's installed dependencies preloaded as its collection
imported them, `warm.prime()`, `gc.freeze()`) forks, round after round, one run of
each kind, so a change in the machine's load hits all three alike (each kind first in
turn; every run in one process, `--numprocesses=0` where pytest-xdist is installed):

- `plain`: `pytest ARGS` with JUnit XML, without flakehunt's plugin (`-p no:flakehunt`);
- `evidence off`: with the plugin (`--flakehunt-evidence=off`: outcomes, order);
- `evidence on`: with the plugin and its probes (fixture timeline, failure anatomy,
  the state snapshot between tests), as every sweep run has them.

Prints each kind's median CPU seconds (user+sys of the run, as `wait4` reports it),
the ratios between them, and the state snapshot's share: the time the `on` runs spent
in `flakehunt.snapshot.StateTracker.snapshot` (timed inside them) against what the
evidence added. Compare ratios, not seconds: these machines are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: the parent's side, run by the suite's interpreter with flakehunt's child folder first
#: on its path: argv = forks, output folder, then the pytest arguments
DRIVER = r'''
import gc, json, os, sys, time
sys.path[0:1] = [os.getcwd()]
forks, out, args = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
sys.argv = ["pytest"]
from flakehunt import warm
warm.import_base()
import importlib.util
import pytest

# every kind in one process, whatever the suite's addopts say of xdist
serial = ["--numprocesses=0"] if importlib.util.find_spec("xdist") else []


def run(kind, i, extra):
    folder = os.path.join(out, f"{kind}-{i}")
    os.makedirs(folder, exist_ok=True)
    argv = [*args, "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
            f"--junitxml={folder}/junit.xml", f"--basetemp={folder}/tmp", *extra, *serial]
    if kind == "plain":  # not even flakehunt's entry point, where it is installed
        argv += ["-p", "no:flakehunt"]
    else:
        argv += ["-p", "flakehunt", f"--flakehunt-order=hash:{i}",
                 f"--flakehunt-out={folder}",
                 f"--flakehunt-evidence={'on' if kind == 'on' else 'off'}"]
    pid = os.fork()
    if pid == 0:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        spent = [0.0]
        if kind == "on":
            from flakehunt import snapshot
            take = snapshot.StateTracker.snapshot

            def timed(self):
                t0 = time.process_time()
                try:
                    return take(self)
                finally:
                    spent[0] += time.process_time() - t0
            snapshot.StateTracker.snapshot = timed
        code = 3
        try:
            code = pytest.main(argv)
        finally:
            with open(os.path.join(folder, "snapshot.json"), "w") as f:
                json.dump({"snapshot": spent[0], "code": int(code)}, f)
            os._exit(0)
    _, status, usage = os.wait4(pid, 0)
    with open(os.path.join(folder, "snapshot.json")) as f:
        inside = json.load(f)
    return {"kind": kind, "cpu": usage.ru_utime + usage.ru_stime, **inside}


# the suite's installed dependencies, as its collection imported them (a forked child)
modules_file = os.path.join(out, "modules.json")
pid = os.fork()
if pid == 0:
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    pytest.main([*args, "--collect-only", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"])
    with open(modules_file, "w") as f:
        json.dump(warm.preloadable(os.getcwd())["modules"], f)
    os._exit(0)
os.waitpid(pid, 0)
with open(modules_file) as f:
    safe, why = warm.preload(json.load(f), warm.open_fds())
print(json.dumps({"preloaded": safe, "why": why}), flush=True)
warm.prime()
gc.freeze()
kinds = ["plain", "off", "on"]
for i in range(forks):
    for kind in kinds[i % 3:] + kinds[:i % 3]:  # each kind first in turn
        print(json.dumps(run(kind, i, [])), flush=True)
'''


def measure(suite: Path, python: str, forks: int, args: list[str],
            out: Path) -> dict[str, object]:
    from flakehunt import childpath

    child = childpath.ensure()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the children share a bytecode cache, as a
    env["PYTHONPYCACHEPREFIX"] = str(childpath.pycache(child))  # hunt's runs do
    env["PYTHONPATH"] = childpath.pythonpath(child, env.get("PYTHONPATH"))
    out.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([python, "-c", DRIVER, str(forks), str(out), *args], cwd=suite,
                          env=env, capture_output=True, text=True, timeout=3600)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        raise SystemExit(f"bench_evidence: the parent failed: {proc.stderr.strip()[-500:]}")
    runs = lines[1:]
    cpu = {k: statistics.median(r["cpu"] for r in runs if r["kind"] == k)
           for k in ("plain", "off", "on")}
    snap = statistics.median(r["snapshot"] for r in runs if r["kind"] == "on")
    return {"preload": lines[0], "cpu": cpu, "snapshot": snap, "runs": runs}


def report(suite: Path, got: dict[str, object]) -> list[str]:
    cpu = got["cpu"]
    assert isinstance(cpu, dict)
    snap = float(got["snapshot"])  # type: ignore[arg-type]
    added = cpu["on"] - cpu["off"]
    preload = got["preload"]
    assert isinstance(preload, dict)
    stopped = f" (stopped at {preload['why']})" if preload["why"] else ""
    return [f"suite {suite}: median CPU seconds of a warm run, one parent, kinds side by side",
            f"  the parent preloaded {preload['preloaded']} installed modules{stopped}",
            f"  plain pytest      {cpu['plain']:.3f}",
            f"  evidence off      {cpu['off']:.3f}  x{cpu['off'] / cpu['plain']:.2f} plain",
            f"  evidence on       {cpu['on']:.3f}  x{cpu['on'] / cpu['plain']:.2f} plain, "
            f"x{cpu['on'] / cpu['off']:.2f} off",
            f"  state snapshot    {snap:.3f}  {snap / added:.0%} of what the evidence adds"
            if added > 0 else f"  state snapshot    {snap:.3f}"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("suite", nargs="?", type=Path, default=ROOT / "examples" / "websocket")
    ap.add_argument("--python", default=sys.executable, help="the suite's interpreter")
    ap.add_argument("--forks", type=int, default=7, help="runs of each kind (default 7)")
    ap.add_argument("--out", type=Path, default=None, help="the runs' folders (default: temp)")
    ap.add_argument("--json", type=Path, default=None)
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    ns = ap.parse_args(argv[:cut])
    ns.args = argv[cut + 1:]  # pytest's arguments
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-evidence-") as tmp:
        python = str(Path(ns.python).absolute()) if os.sep in ns.python else ns.python
        got = measure(ns.suite.resolve(), python, ns.forks, ns.args,
                      ns.out or Path(tmp))
    print("\n".join(report(ns.suite, got)))
    if ns.json:
        ns.json.write_text(json.dumps(got, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
