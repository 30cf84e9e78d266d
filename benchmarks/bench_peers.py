"""Benchmark: flakehunt against the tools a user would otherwise reach for.

    python3 benchmarks/bench_peers.py [--suites websocket,generated]
        [--contenders flakehunt,naive-loop,...] [--seed 42] [--quick] [--json PATH]

One invocation from the repository root, with only python3 and PyPI: every
contender gets its own virtual environment under benchmarks/.venvs/<name>
(built on first use, reused afterwards), and runs, one after another, on

- websocket: the shipped example examples/websocket (27 tests, 4 flaky, see its
  README), copied to a temporary directory so nothing is written into the repo;
- generated: the suite of benchmarks/gen_suite.py (~420 tests, 7 seeded flaky
  tests of every category, manifest in its expected.json).

Contenders (see /work/shared/research/peers.md for how the peers behave):

  flakehunt              flakehunt run tests --seed S (its default settings)
  naive-loop             50 x pytest -p randomly --randomly-seed=i
  flakefinder            pytest --flake-finder --flake-runs=50 (one process)
  detect-test-pollution  one bisection per seeded order-dependent victim
                         (it needs the victim; it can neither find nor classify)
  flake-exorcist         exorcist hunt tests --fast --json --seed S --max-runs 50
  flakedoctor            pytest --doctor --doctor-json=fd.json tests
  whyflaky               whyflaky scan . --json PATH (its defaults: 6 rounds, 400 trials)
  flaky-repro            flaky-repro NODEID, for each seeded test in turn (it must be
                         told the test; its defaults, no budget flag)

Measured per contender and suite: wall time; wall time until every seeded flaky
test had been seen both passing and failing ("find-all"); pytest sessions and
interpreters, counted for real in each contender venv: a .pth hook logs the pid and
kind of every interpreter started (pytest, xdist worker, flakehunt warm parent, other
python) and a PYTEST_PLUGINS plugin every pytest session (a warm-forked run is one; an
xdist worker's is not), both to $BENCH_PROC_LOG; recall, false positives and whether each
seeded test was classified right. A table goes to stdout, chatter to stderr,
every number to --json (default benchmarks/last-peers.json).

Category credit for peers is strict: a peer's word counts only where it clearly
means the same as ours (PEER_CATEGORY below); no peer names a fixture, so no
peer can get a seeded test classified right (we require category AND fixture).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / "benchmarks" / ".venvs"
sys.path.insert(0, str(ROOT / "benchmarks"))
import gen_suite  # noqa: E402 - stdlib only, beside this file

TIMEOUT = 15 * 60  # per contender run (the naive loop: for all its runs together)
CONTENDERS = ["naive-loop", "flakehunt", "flakefinder", "detect-test-pollution",
              "flake-exorcist", "flakedoctor", "whyflaky", "flaky-repro"]
# the peers that hunt (or diagnose) flaky tests themselves: flakehunt must start fewer
# pytest sessions and interpreters than each of them per seeded test found
HUNTERS = ["flake-exorcist", "flakedoctor", "whyflaky", "flaky-repro"]
SUITES = ["websocket", "generated"]

# What each contender venv gets besides the suites' own dependencies (pytest-asyncio,
# fastapi, httpx: the [examples] extra of pyproject.toml). Peers pinned to the versions
# studied in shared/research/peers.md.
PACKAGES = {
    "flakehunt": ["-e", f"{ROOT}[examples]"],
    "naive-loop": ["pytest-randomly"],
    "flakefinder": ["pytest-flakefinder==1.1.0"],
    "detect-test-pollution": ["detect-test-pollution==1.2.0"],
    "flake-exorcist": ["flake-exorcist==0.1.0"],
    "flakedoctor": ["pytest-flakedoctor==0.1.2"],
    "whyflaky": ["whyflaky==0.1.0"],
    "flaky-repro": ["flaky-repro==0.1.2"],
}

# A peer's own word -> our category, only where the word clearly means the same thing.
# - flake-exorcist's primary root_cause is the dimension that flipped the test: "order"
#   means order dependence through shared state, which is state-leak. A loop-closed bug
#   is order-dependent too, but "order" does not say it is an event-loop lifecycle bug:
#   no credit. "environment", "parallel", "seed" mean none of our categories.
# - flakedoctor's verdict is "flaky-<axis>": "flaky-order" -> state-leak (same reason),
#   "flaky-interleave" (a thread schedule that fails) -> race. time/rng/network/fs/
#   hashseed/unattributed mean none of ours.
PEER_CATEGORY = {
    "flake-exorcist": {"order": "state-leak"},
    "flakedoctor": {"flaky-order": "state-leak", "flaky-interleave": "race"},
    "whyflaky": {"order-dependent (victim)": "state-leak"},
}

# The websocket example's four flaky tests, from examples/websocket/README.md and checked
# against `flakehunt run examples/websocket --runs 50 --seed 21`. A loop-closed victim
# fails after any of the three tests that leave a connection (and so the loop) behind.
WS = "tests/api/test_websocket.py::"
WS_LOOP_POLLUTERS = [WS + "TestConnectionBasics::test_connect_accepts_websocket",
                     WS + "TestWebSocketPhase3::test_heartbeat_reaches_connected_user",
                     WS + "TestPhase4Features::test_publish_reaches_topic_subscribers"]
WEBSOCKET_MANIFEST = {
    WS + "TestWebSocketPhase3::test_reconnect_with_user_mismatch":
        {"category": "loop-closed", "fixture": "manager", "polluter": WS_LOOP_POLLUTERS},
    WS + "TestWebSocketSubscriptionLimits::test_subscribe_too_many_targets":
        {"category": "loop-closed", "fixture": "manager", "polluter": WS_LOOP_POLLUTERS},
    WS + "TestPhase4Features::test_batch_flush_loop":
        {"category": "state-leak", "fixture": "manager",
         "polluter": [WS + "TestMessageQueue::test_offline_messages_are_queued"]},
    WS + "TestWebSocketSubscriptionLimits::test_subscribe_exceeds_total_limit":
        {"category": "race", "fixture": "websocket", "polluter": None},
}

# Logs the pid of every pytest process and xdist worker started by this venv's python.
# Installed as <site-packages>/zz_bench_count.py, imported by zz_bench_count.pth.
COUNT_HOOK = '''\
"""flakehunt bench_peers: log pytest processes to $BENCH_PROC_LOG (no-op without it)."""
import os
import sys


def _kind(argv):
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == "-c":
            code = argv[i + 1] if i + 1 < len(argv) else ""
            return ("xdist-worker" if "exec(eval(sys.stdin.readline()))" in code
                    else "helper" if "flakehunt" in code else "python")
        if a == "-m":
            return "pytest" if argv[i + 1:i + 2] in (["pytest"], ["py.test"]) else "python"
        if a.startswith("-m"):
            return "pytest" if a[2:] in ("pytest", "py.test") else "python"
        if a.startswith("-c"):
            return "python"
        if a in ("-X", "-W"):
            i += 2
            continue
        if a.startswith("-"):
            i += 1
            continue
        return "pytest" if os.path.basename(a) in ("pytest", "py.test") else "python"
    return "python"


_path = os.environ.get("BENCH_PROC_LOG")
if _path:
    with open(_path, "a") as _f:
        _f.write(f"{os.getpid()} {_kind(list(getattr(sys, 'orig_argv', sys.argv)))}\\n")
'''

# Logs every pytest session (not an xdist worker's) to $BENCH_PROC_LOG: one line per
# session, so a process that runs several (a fork of a warm parent, pytest.main in a
# loop) counts each. Loaded into every pytest of the venv through PYTEST_PLUGINS.
SESSION_HOOK = '''\
"""flakehunt bench_peers: log each pytest session to $BENCH_PROC_LOG (no-op without it)."""
import os


def pytest_sessionstart(session):
    path = os.environ.get("BENCH_PROC_LOG")
    if path and not hasattr(session.config, "workerinput"):
        with open(path, "a") as f:
            f.write(f"{os.getpid()} session\\n")
'''


def say(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- results

@dataclass
class Result:
    """One contender on one suite."""
    contender: str
    suite: str
    status: str = "ok"  # ok | failed | timeout | not installed
    note: str = ""
    wall: float | None = None  # seconds, the whole run
    find_all: float | None = None  # seconds until every seeded test was seen flaky; None: never
    pytest_procs: int | None = None
    xdist_workers: int | None = None
    sessions: int | None = None  # pytest sessions (SESSION_HOOK), an xdist worker's not
    interpreters: int | None = None  # every Python process its venv started (COUNT_HOOK)
    in_scope: int = 0  # seeded tests this contender could find
    found: list[str] = field(default_factory=list)  # seeded tests it reported flaky
    false_positives: list[str] = field(default_factory=list)
    category_right: list[str] = field(default_factory=list)  # seeded tests given our category
    correct: list[str] = field(default_factory=list)  # category AND fixture (AND polluter) right
    polluter_right: list[str] = field(default_factory=list)  # victims given a true polluter
    details: dict = field(default_factory=dict)


@dataclass
class Suite:
    name: str
    root: Path  # pytest rootdir; every contender runs there with selection "tests"
    manifest: dict
    nodeids: list[str] = field(default_factory=list)


@dataclass
class Proc:
    returncode: int | None  # None: timed out and stopped
    wall: float
    out: Path
    err: Path

    def tail(self, n: int = 400) -> str:
        text = self.err.read_text(errors="replace") + self.out.read_text(errors="replace")
        return " ".join(text.split())[-n:]


# ----------------------------------------------------------------------------- plumbing

def venv_python(name: str) -> Path:
    return VENVS / name / "bin" / "python"


def suite_requirements() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["examples"]


def ensure_venv(name: str) -> str | None:
    """Build (or reuse) the contender's venv; returns an error text or None."""
    venv = VENVS / name
    wanted = PACKAGES[name] + ([] if name == "flakehunt" else suite_requirements())
    if name == "flakehunt":  # reinstall when flakehunt's own dependencies change
        wanted = wanted + tomllib.loads((ROOT / "pyproject.toml").read_text())[
            "project"]["dependencies"]
    marker = venv / "bench-installed.json"
    if not (venv_python(name).exists() and marker.exists()
            and json.loads(marker.read_text()) == wanted):
        say(f"[venv] building {venv} ({' '.join(wanted)})")
        if not venv_python(name).exists():
            proc = subprocess.run([sys.executable, "-m", "venv", str(venv)],
                                  check=False, capture_output=True, text=True)
            if proc.returncode:
                return f"venv failed: {proc.stderr.strip()[-300:]}"
        proc = subprocess.run([str(venv_python(name)), "-m", "pip", "install", "-q", *wanted],
                              check=False, capture_output=True, text=True)
        if proc.returncode:
            return f"pip install failed: {' '.join(proc.stderr.split())[-300:]}"
        marker.write_text(json.dumps(wanted))
    site = subprocess.run([str(venv_python(name)), "-c",
                           "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "zz_bench_count.py").write_text(COUNT_HOOK)
    Path(site, "zz_bench_count.pth").write_text("import zz_bench_count\n")
    Path(site, "zz_bench_session.py").write_text(SESSION_HOOK)
    if name == "flakehunt":  # the venv must run this checkout's flakehunt, not a copy
        where = subprocess.run([str(venv_python(name)), "-c",
                                "import flakehunt; print(flakehunt.__file__)"],
                               cwd=venv, capture_output=True, text=True, check=False)
        got = Path(where.stdout.strip()).resolve().parent
        if got != ROOT / "flakehunt":
            return f"imports flakehunt from {got or where.stderr.strip()[-200:]}, not {ROOT}"
    return None


def versions(name: str) -> dict[str, str]:
    proc = subprocess.run([str(venv_python(name)), "-m", "pip", "list", "--format=json"],
                          check=False, capture_output=True, text=True)
    keep = ("pytest", "flake", "detect-test-pollution", "exorcist", "execnet")
    try:
        return {p["name"]: p["version"] for p in json.loads(proc.stdout)
                if any(k in p["name"].lower() for k in keep)}
    except json.JSONDecodeError:
        return {}


def bench_env(name: str, proc_log: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.pop("PYTHONPATH", None)
    # bytecode caching as on a developer's machine (this sandbox sets it off): else every
    # pytest process of every contender recompiles and re-rewrites the whole suite
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["VIRTUAL_ENV"] = str(VENVS / name)
    env["PATH"] = f"{VENVS / name / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["BENCH_PROC_LOG"] = str(proc_log)
    env["PYTEST_PLUGINS"] = "zz_bench_session"  # counts sessions (SESSION_HOOK)
    return env


def stop_group(proc: subprocess.Popen) -> None:
    """Stop the process group we created for ``proc`` (SIGTERM, then SIGKILL)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def run(argv: list[str], cwd: Path, env: dict[str, str], logs: Path, timeout: float) -> Proc:
    """Run ``argv`` in a new process group; stdout and stderr to files."""
    out, err = logs.with_suffix(".out"), logs.with_suffix(".err")
    start = time.monotonic()
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=o, stderr=e,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            code: int | None = proc.wait(max(timeout, 1))
        except subprocess.TimeoutExpired:
            stop_group(proc)
            code = None
    wall = time.monotonic() - start
    try:  # anything of ours left in the group (an orphaned child) goes too
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    return Proc(code, wall, out, err)


def count_kinds(log: Path) -> dict[str, int]:
    """The hooks' log -> interpreters started, by kind ("pytest", "xdist-worker",
    "helper": a flakehunt warm parent, "python": any other, the tool's own CLI
    included), and "sessions": pytest sessions run, an xdist worker's not counted."""
    kinds: dict[str, str] = {}
    sessions = 0
    if log.exists():
        for line in log.read_text().splitlines():
            pid, _, kind = line.partition(" ")
            if kind == "session":
                sessions += 1
            else:  # a .pth may run twice in one process: one pid, one count
                kinds[pid] = kind
    counts = {k: sum(v == k for v in kinds.values())
              for k in ("pytest", "xdist-worker", "helper", "python")}
    return {**counts, "interpreters": len(kinds), "sessions": sessions}


def count_procs(log: Path) -> tuple[int, int]:
    """pytest processes and xdist workers started (see count_kinds)."""
    kinds = count_kinds(log)
    return kinds["pytest"], kinds["xdist-worker"]


def junit_key(nodeid: str) -> tuple[str, str]:
    """(classname, name) as pytest's JUnit XML writes a nodeid (mangle_test_address)."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


def junit_outcomes(xml: Path, by_key: dict[tuple[str, str], str],
                   name_fix=lambda name: name) -> list[tuple[str, str]]:
    """[(nodeid, "passed"|"failed")] from a JUnit XML file (skips ignored)."""
    out = []
    try:
        root = ET.parse(xml).getroot()
    except (ET.ParseError, OSError):
        return out
    for tc in root.iter("testcase"):
        key = (tc.get("classname", ""), name_fix(tc.get("name", "")))
        nodeid = by_key.get(key, "::".join(key))
        if tc.find("failure") is not None or tc.find("error") is not None:
            out.append((nodeid, "failed"))
        elif tc.find("skipped") is None:
            out.append((nodeid, "passed"))
    return out


def collect(suite: Suite) -> list[str]:
    proc = subprocess.run([str(venv_python("naive-loop")), "-m", "pytest", "--collect-only",
                           "-q", "-p", "no:randomly", "-p", "no:cacheprovider", "tests"],
                          check=False, cwd=suite.root, capture_output=True, text=True,
                          env=bench_env("naive-loop", Path(os.devnull)))
    return [line.strip() for line in proc.stdout.splitlines() if "::" in line]


def fail_result(r: Result, proc: Proc, what: str) -> Result:
    r.status = "timeout" if proc.returncode is None else "failed"
    r.note = (f"timed out after {proc.wall:.0f}s" if proc.returncode is None
              else f"{what} exit {proc.returncode}: {proc.tail()}")
    return r


def score_flaky(r: Result, suite: Suite, flaky: set[str]) -> None:
    r.found = sorted(t for t in suite.manifest if t in flaky)
    r.false_positives = sorted(flaky - set(suite.manifest))


# ----------------------------------------------------------------------------- contenders

def naive_loop(suite: Suite, work: Path, seed: int, runs: int) -> Result:
    r = Result("naive-loop", suite.name, in_scope=len(suite.manifest))
    env = bench_env("naive-loop", work / "procs.log")
    by_key = {junit_key(n): n for n in suite.nodeids}
    seen: dict[str, set[str]] = {}
    failed_runs = dict.fromkeys(suite.manifest, 0)
    start = time.monotonic()
    done = 0
    for i in range(1, runs + 1):
        left = TIMEOUT - (time.monotonic() - start)
        if left <= 0:
            r.status, r.note = "timeout", f"stopped after {done} of {runs} runs"
            break
        xml = work / f"run{i}.xml"
        proc = run([str(venv_python("naive-loop")), "-m", "pytest", "-q", "-p", "randomly",
                    "-p", "no:cacheprovider", f"--randomly-seed={seed * 1000 + i}",
                    f"--junitxml={xml}", "tests"], suite.root, env, work / f"run{i}", left)
        if proc.returncode is None:
            r.status, r.note = "timeout", f"timed out in run {i}, after {done} of {runs} runs"
            break
        if proc.returncode not in (0, 1):
            r.status, r.note = "failed", f"run {i}: exit {proc.returncode}: {proc.tail()}"
            break
        done += 1
        for nodeid, outcome in junit_outcomes(xml, by_key):
            seen.setdefault(nodeid, set()).add(outcome)
            if nodeid in failed_runs and outcome == "failed":
                failed_runs[nodeid] += 1
        if r.find_all is None and all(len(seen.get(t, ())) == 2 for t in suite.manifest):
            r.find_all = time.monotonic() - start
    r.wall = time.monotonic() - start
    score_flaky(r, suite, {t for t, o in seen.items() if len(o) == 2})
    r.details = {"runs": done, "failed_runs": failed_runs}
    r.note = r.note or f"{done} runs; explains nothing"
    return r


def flakehunt(suite: Suite, work: Path, seed: int) -> Result:
    r = Result("flakehunt", suite.name, in_scope=len(suite.manifest))
    out = work / "flakehunt.json"
    proc = run([str(VENVS / "flakehunt" / "bin" / "flakehunt"), "run", "tests", "--json", str(out),
                "--seed", str(seed), "--no-progress", "--no-history"],
               suite.root, bench_env("flakehunt", work / "procs.log"), work / "flakehunt",
               TIMEOUT)
    r.wall = proc.wall
    if proc.returncode not in (0, 1) or not out.exists():
        return fail_result(r, proc, "flakehunt")
    report = json.loads(out.read_text())
    tests = {t["nodeid"]: t for t in report["tests"]}
    score_flaky(r, suite, {n for n, t in tests.items() if t["verdict"] == "flaky"})
    for nodeid in r.found:
        want, got = suite.manifest[nodeid], tests[nodeid]
        named = got.get("polluter") or []
        polluter_ok = want["category"] != "state-leak" or (
            bool(named) and set(named) <= set(want["polluter"]))
        if got["category"] == want["category"]:
            r.category_right.append(nodeid)
            if got["suspected_fixture"] == want["fixture"] and polluter_ok:
                r.correct.append(nodeid)
        if want["polluter"] and named and set(named) <= set(want["polluter"]):
            r.polluter_right.append(nodeid)
    runs = report["runs"]
    if len(r.found) == r.in_scope:  # when the runs carry no `ended`: the total
        r.find_all = find_all_from_runs(runs, suite) or r.wall
    r.details = {
        "settings": report.get("settings"),
        "runs_by_purpose": {p: sum(1 for x in runs if x["purpose"] == p)
                            for p in sorted({x["purpose"] for x in runs})},
        "seeded": {n: {k: tests[n].get(k) for k in ("verdict", "category", "suspected_fixture",
                                                     "polluter", "failure_rate")}
                   for n in suite.manifest if n in tests},
        "overhead": overhead(runs, proc.wall),
        "order_search": order_search(runs, suite),
        "timing": report.get("timing"),
        "find_all_from": "runs[].ended" if all("ended" in x for x in runs) else "total wall",
    }
    r.note = ", ".join(f"{n}: {c}" for n, c in r.details["runs_by_purpose"].items()) + " runs"
    return r


def order_search(runs: list[dict], suite: Suite) -> dict[str, dict]:
    """Per seeded victim with a polluter: the runs flakehunt spent on tests-before-it
    experiments (suspects + bisection, purpose "bisect") against the bound
    ceil(log2 n) + 3, n = the tests before it in its shortest failing serial sweep run."""
    out = {}
    for nodeid, want in suite.manifest.items():
        if not want["polluter"]:
            continue
        before = [pos - 1 for x in runs if x["purpose"] == "sweep" and not x.get("workers")
                  for res in x["results"] or () if res["nodeid"] == nodeid
                  and res["outcome"] in ("failed", "error") and (pos := res.get("position"))]
        if not before:
            continue
        n = min(before)
        spent = sum(1 for x in runs if x["purpose"] == "bisect"
                    and (x.get("tests") or [None])[-1] == nodeid)
        bound = math.ceil(math.log2(max(n, 1))) + 3
        out[nodeid] = {"candidates": n, "runs": spent, "bound": bound, "met": spent <= bound}
    return out


def find_all_from_runs(runs: list[dict], suite: Suite) -> float | None:
    """Seconds since the hunt started (flakehunt's clock) at which the run ended that
    completed the set of seeded tests seen both passing and failing; None if the runs
    carry no `ended` (or no results)."""
    if not runs or not all("ended" in x and x.get("results") is not None for x in runs):
        return None
    seen: dict[str, set[str]] = {}
    for x in sorted(runs, key=lambda x: x["ended"]):
        for res in x["results"]:
            seen.setdefault(res["nodeid"], set()).add(
                "passed" if res["outcome"] == "passed" else
                "skipped" if res["outcome"] == "skipped" else "failed")
        if all({"passed", "failed"} <= seen.get(t, set()) for t in suite.manifest):
            return float(x["ended"])
    return None


def run_cpus(run: dict, cpus: int) -> float:
    """CPUs a flakehunt run keeps busy on average, as flakehunt's own scheduler counts
    them (profiles.cpus_used): xdist workers (at least 1); a quota run its share of that
    once its tests started, all of them before (start-up and collection run at full
    speed); single-core 1; contended the whole machine (its burners)."""
    workers = max(1, run.get("workers") or 0)
    profile = run.get("profile") or "none"
    if profile == "contended":
        return cpus
    if profile == "single-core":
        return 1
    if profile.startswith("quota-"):
        share = workers * int(profile.split("-")[1]) / 100
        duration = run.get("duration") or 0.0
        after = ((run.get("profile_applied") or {}).get("parent") or {}).get(
            "applied_after_s")
        if after is None or not duration:
            return share
        full = min(after, duration)
        return (workers * full + share * (duration - full)) / duration
    return workers


def overhead(runs: list[dict], wall: float) -> dict:
    """overhead = wall / ideal - 1, with ideal = max(longest run, sum over runs of
    duration x CPUs it keeps busy / CPUs): the wall a perfect packing of the very same
    runs on this machine would need, with no collection, planning, waiting between
    dependent follow-up batches or classification. A lower bound, so the overhead is
    an upper bound; it also charges flakehunt for batches that must wait on each other."""
    cpus = os.cpu_count() or 1
    durations = [x.get("duration") or 0.0 for x in runs]
    cpu_seconds = sum(d * run_cpus(x, cpus) for d, x in zip(durations, runs, strict=True))
    ideal = max(max(durations, default=0.0), cpu_seconds / cpus)
    # with runs[].ended: seconds of the hunt during which no run was in flight at all
    no_run = None
    if runs and all("ended" in x for x in runs):
        busy, reach = 0.0, 0.0
        spans = sorted((x["ended"] - d, x["ended"]) for x, d in zip(runs, durations, strict=True))
        for begin, end in spans:
            busy += max(0.0, end - max(begin, reach))
            reach = max(reach, end)
        no_run = wall - busy
    return {"wall": wall, "sum_durations": sum(durations), "cpu_seconds": cpu_seconds,
            "cpus": cpus, "ideal": ideal, "overhead": wall / ideal - 1 if ideal else None,
            "no_run_in_flight": no_run}


def flakefinder(suite: Suite, work: Path, runs: int) -> Result:
    r = Result("flakefinder", suite.name, in_scope=len(suite.manifest))
    xml = work / "ff.xml"
    proc = run([str(venv_python("flakefinder")), "-m", "pytest", "-q", "-p", "no:randomly",
                "-p", "no:cacheprovider", "--flake-finder", f"--flake-runs={runs}",
                f"--junitxml={xml}", "tests"],
               suite.root, bench_env("flakefinder", work / "procs.log"), work / "ff", TIMEOUT)
    r.wall = proc.wall
    if proc.returncode not in (0, 1) or not xml.exists():
        return fail_result(r, proc, "pytest --flake-finder")

    def strip_copy(name: str) -> str:  # test_x[7] -> test_x; test_p[7-a-b] -> test_p[a-b]
        m = re.fullmatch(r"(.*?)\[\d+(?:-(.*))?\]", name)
        return name if not m else m.group(1) + (f"[{m.group(2)}]" if m.group(2) else "")

    by_key = {junit_key(n): n for n in suite.nodeids}
    seen: dict[str, set[str]] = {}
    for nodeid, outcome in junit_outcomes(xml, by_key, strip_copy):
        seen.setdefault(nodeid, set()).add(outcome)
    score_flaky(r, suite, {t for t, o in seen.items() if len(o) == 2})
    r.find_all = r.wall if len(r.found) == r.in_scope else None
    always = sorted(t for t in suite.manifest if seen.get(t) == {"failed"})
    r.details = {"runs": runs, "seeded_failing_every_copy": always}
    r.note = f"{runs} copies per test, declared order; explains nothing" + (
        f"; {len(always)} seeded always failed" if always else "")
    return r


def detect_test_pollution(suite: Suite, work: Path) -> Result:
    victims = [t for t, m in suite.manifest.items() if m["category"] in ("state-leak",
                                                                           "loop-closed")]
    r = Result("detect-test-pollution", suite.name, in_scope=len(victims), wall=0.0)
    env = bench_env("detect-test-pollution", work / "procs.log")
    printed: dict[str, str | None] = {}
    for i, victim in enumerate(victims):
        proc = run([str(VENVS / "detect-test-pollution" / "bin" / "detect-test-pollution"),
                    "--failing-test", victim, "--tests", "tests"],
                   suite.root, env, work / f"dtp{i}", TIMEOUT - r.wall)
        r.wall += proc.wall
        if proc.returncode is None:
            r.status, r.note = "timeout", f"timed out on {victim}"
            break
        m = re.search(r"-> the polluting test is: (\S+)", proc.out.read_text(errors="replace"))
        printed[victim] = m.group(1) if m else None
        if not m:
            last = [ln for ln in proc.out.read_text(errors="replace").splitlines() if ln.strip()]
            printed[victim + " (why)"] = last[-1] if last else proc.tail(120)
        elif m.group(1) in suite.manifest[victim]["polluter"]:
            r.polluter_right.append(victim)
    r.found = list(r.polluter_right)  # it only "finds" a victim by naming its true polluter
    r.find_all = r.wall if len(r.found) == r.in_scope else None
    r.details = {"printed": printed}
    if r.status == "ok":
        r.note = (f"given the {len(victims)} order-dependent victims; true polluter for "
                  f"{len(r.polluter_right)}; no categories")
    return r


def flake_exorcist(suite: Suite, work: Path, seed: int, max_runs: int) -> Result:
    r = Result("flake-exorcist", suite.name, in_scope=len(suite.manifest))
    proc = run([str(VENVS / "flake-exorcist" / "bin" / "exorcist"), "hunt", "tests", "--fast",
                "--json", "--seed", str(seed), "--max-runs", str(max_runs)],
               suite.root, bench_env("flake-exorcist", work / "procs.log"), work / "exorcist",
               TIMEOUT)
    r.wall = proc.wall
    try:
        report = json.loads(proc.out.read_text())
    except json.JSONDecodeError:
        report = None
    if proc.returncode not in (0, 1) or report is None:
        return fail_result(r, proc, "exorcist")
    findings = {f["node_id"]: f for f in report.get("findings", [])}
    score_flaky(r, suite, {n for n, f in findings.items() if f.get("verdict") == "flaky"})
    words = PEER_CATEGORY["flake-exorcist"]
    for nodeid in r.found:
        f, want = findings[nodeid], suite.manifest[nodeid]
        cause = (f.get("primary_cause") or {}).get("root_cause")
        if want["polluter"] and f.get("polluter_node_id") in want["polluter"]:
            r.polluter_right.append(nodeid)
        if words.get(cause) == want["category"]:
            r.category_right.append(nodeid)  # no fixture named: never fully right
    r.find_all = r.wall if len(r.found) == r.in_scope else None
    r.details.update({
        "summary": report.get("summary"),
        "seeded": {n: {"verdict": f.get("verdict"),
                       "cause": (f.get("primary_cause") or {}).get("root_cause"),
                       "polluter": f.get("polluter_node_id")}
                   for n, f in findings.items() if n in suite.manifest},
        "genuinely_failing": report.get("genuinely_failing"),
        "environment_dependent": [e.get("node_id") for e in
                                  report.get("environment_dependent", [])],
    })
    s = report.get("summary", {})
    causes = [v["cause"] for v in r.details["seeded"].values() if v["verdict"] == "flaky"]
    undecided = sum(v["verdict"] == "inconclusive" for v in r.details["seeded"].values())
    r.note = (f"{s.get('total_runs')} runs" + (", budget exhausted" if s.get("budget_exhausted")
                                               else "")
              + "; causes of seeded: " + ", ".join(f"{c} x{causes.count(c)}"
                                                   for c in sorted(set(map(str, causes))))
              + (f"; {undecided} seeded inconclusive" if undecided else ""))
    return r


def flakedoctor(suite: Suite, work: Path) -> Result:
    r = Result("flakedoctor", suite.name, in_scope=len(suite.manifest))
    out = work / "fd.json"
    proc = run([str(venv_python("flakedoctor")), "-m", "pytest", "-p", "no:cacheprovider",
                "--doctor", f"--doctor-json={out}", "tests"],
               suite.root, bench_env("flakedoctor", work / "procs.log"), work / "fd", TIMEOUT)
    r.wall = proc.wall
    if proc.returncode not in (0, 1):
        return fail_result(r, proc, "pytest --doctor")
    if not out.exists():  # nothing failed in its one suite run: nothing diagnosed
        r.note = "suite passed in its one run: nothing diagnosed"
        return r
    report = json.loads(out.read_text())
    nodeid, verdict = report.get("nodeid"), report.get("verdict", "")
    flaky = {nodeid} if verdict.startswith("flaky") else set()
    score_flaky(r, suite, flaky)
    polluters = (report.get("repro") or {}).get("polluters") or []
    want = suite.manifest.get(nodeid)
    if want and want["polluter"] and polluters and set(polluters) <= set(want["polluter"]):
        r.polluter_right.append(nodeid)
    if want and flaky and PEER_CATEGORY["flakedoctor"].get(verdict) == want["category"]:
        r.category_right.append(nodeid)  # no fixture named: never fully right
    r.find_all = r.wall if len(r.found) == r.in_scope else None
    r.details = {"nodeid": nodeid, "verdict": verdict, "headline": report.get("headline"),
                 "polluters": polluters, "total_runs": report.get("total_runs")}
    r.note = (f"diagnoses the first failure only: {nodeid.split('::')[-1]} -> {verdict}"
              f" ({report.get('total_runs')} runs)")
    return r


def whyflaky(suite: Suite, work: Path) -> Result:
    r = Result("whyflaky", suite.name, in_scope=len(suite.manifest))
    out = work / "whyflaky.json"
    proc = run([str(VENVS / "whyflaky" / "bin" / "whyflaky"), "scan", ".", "--json", str(out),
                "--db", str(work / "whyflaky.db"), "-q"],
               suite.root, bench_env("whyflaky", work / "procs.log"), work / "whyflaky",
               TIMEOUT)
    r.wall = proc.wall
    if proc.returncode not in (0, 1) or not out.exists():
        return fail_result(r, proc, "whyflaky scan")
    report = json.loads(out.read_text())
    flakes = {f["test_id"]: f for f in report.get("flakes", [])
              if not str(f.get("kind", "")).startswith("always failing")}
    score_flaky(r, suite, set(flakes))
    for nodeid in r.found:
        f, want = flakes[nodeid], suite.manifest[nodeid]
        polluters = (f.get("diagnosis") or {}).get("polluters") or []
        if want["polluter"] and polluters and set(polluters) <= set(want["polluter"]):
            r.polluter_right.append(nodeid)
        if PEER_CATEGORY["whyflaky"].get(f.get("kind")) == want["category"]:
            r.category_right.append(nodeid)  # no fixture named: never fully right
    r.find_all = r.wall if len(r.found) == r.in_scope else None
    cost = report.get("cost") or {}
    r.details = {"cost": cost, "seeded": {n: {"kind": f.get("kind"), "cause": (
        f.get("diagnosis") or {}).get("cause")} for n, f in flakes.items()
        if n in suite.manifest}}
    r.note = (f"{cost.get('trials')} trials" + (", budget exhausted" if cost.get("exhausted")
                                                else "") + "; kinds of seeded: " + ", ".join(
        sorted(str(v["kind"]) for v in r.details["seeded"].values())))
    return r


def flaky_repro(suite: Suite, work: Path) -> Result:
    """flaky-repro studies one test it is told: each seeded test in turn (so it only
    confirms what it was given), until TIMEOUT for all of them together."""
    r = Result("flaky-repro", suite.name, in_scope=len(suite.manifest), wall=0.0)
    env = bench_env("flaky-repro", work / "procs.log")
    flaky, printed = set(), {}
    for i, target in enumerate(suite.manifest):
        proc = run([str(VENVS / "flaky-repro" / "bin" / "flaky-repro"), target], suite.root,
                   env, work / f"repro{i}", TIMEOUT - r.wall)
        r.wall += proc.wall
        if proc.returncode is None:
            r.status = "timeout"
            r.note = (f"timed out after {r.wall:.0f} s in target {i + 1} of "
                      f"{len(suite.manifest)} ({target.split('::')[-1]})")
            break
        text = proc.out.read_text(errors="replace")
        runs = {k: int(v) for k, v in
                re.findall(r"^\s*(Passed|Failed)\s*:\s*(\d+)", text, re.M)}
        printed[target] = runs
        if runs.get("Passed") and runs.get("Failed"):
            flaky.add(target)
    score_flaky(r, suite, flaky)
    r.find_all = r.wall if len(r.found) == r.in_scope else None
    r.details = {"baseline": printed}
    if r.status == "ok":
        r.note = f"given each seeded test; baseline both passed and failed for {len(flaky)}"
    return r


# ----------------------------------------------------------------------------- report

def fmt(x: float | None, spec: str = ".1f", none: str = "-") -> str:
    return none if x is None else format(x, spec)


def ratio(x: float | None, base: float | None) -> float | None:
    return x / base if x is not None and base else None


def table(results: list[Result], suites: dict[str, Suite]) -> list[str]:
    cols = [("contender", 21), ("status", 8), ("wall s", 7), ("xnaive", 6), ("find-all s", 10),
            ("xnaive", 6), ("sessions", 8), ("interp", 6), ("pytest", 6), ("xdist", 5),
            ("found", 5), ("FP", 3),
            ("category", 8), ("classified", 10), ("polluter", 8)]

    def row(cells: list[str]) -> str:
        first = f"{cells[0]:{cols[0][1]}} {cells[1]:{cols[1][1]}}"
        rest = " ".join(f"{c:>{w}}" for c, (_, w) in zip(cells[2:], cols[2:], strict=False))
        return f"{first} {rest}  {cells[-1] if len(cells) > len(cols) else 'notes'}"

    lines = []
    for name, suite in suites.items():
        rows = [r for r in results if r.suite == name]
        naive = next((r for r in rows if r.contender == "naive-loop" and r.status == "ok"), None)
        base = naive.wall if naive else None
        seeded = len(suite.manifest)
        kinds = ", ".join(f"{k} x{sum(m['category'] == k for m in suite.manifest.values())}"
                          for k in sorted({m["category"] for m in suite.manifest.values()}))
        lines += ["", f"suite {name}: {len(suite.nodeids)} tests, {seeded} seeded flaky ({kinds}); "
                  "xnaive = / the naive loop's full wall"
                  + (f" ({base:.1f} s)" if base else " (naive loop not run: no ratios)"),
                  row([c for c, _ in cols])]
        for r in rows:
            find = (fmt(r.find_all) if r.find_all is not None
                    else "never" if r.status == "ok" else "-")
            lines.append(row([
                r.contender, r.status, fmt(r.wall), fmt(ratio(r.wall, base), ".2f"), find,
                fmt(ratio(r.find_all, base), ".2f"), fmt(r.sessions, "d"),
                fmt(r.interpreters, "d"), fmt(r.pytest_procs, "d"),
                fmt(r.xdist_workers, "d"), f"{len(r.found)}/{r.in_scope}",
                str(len(r.false_positives)), f"{len(r.category_right)}/{seeded}",
                f"{len(r.correct)}/{seeded}", str(len(r.polluter_right)), r.note]))
            if r.false_positives:
                lines.append(f"{'':22} false positives: {', '.join(r.false_positives)}")
            if r.contender == "naive-loop" and r.details.get("runs"):
                lines.append(f"{'':22} seeded tests failed in: " + ", ".join(
                    f"{n.split('::')[-1]} {k}/{r.details['runs']}"
                    for n, k in r.details["failed_runs"].items()))
    return lines


def targets(results: list[Result], suites: dict[str, Suite]) -> list[dict]:
    """Each target: met True (MET), False (MISSED, with why) or None (n/a, with why)."""
    out = []

    def get(c: str, s: str) -> Result | None:
        return next((r for r in results if r.contender == c and r.suite == s), None)

    for name, suite in suites.items():
        fh, naive = get("flakehunt", name), get("naive-loop", name)
        if not fh:
            continue
        seeded = len(suite.manifest)
        goal = f"{name}: finds+classifies all in <= 0.3x naive"
        if fh.status != "ok":
            out.append({"target": goal, "met": False, "why": f"flakehunt {fh.status}: {fh.note}"})
        elif not naive or naive.status != "ok":
            out.append({"target": goal, "met": None, "why": "naive loop not run or failed"})
        else:
            rt = fh.wall / naive.wall
            why = []
            if rt > 0.3:
                why.append(f"by {rt - 0.3:.2f}x: wall {fh.wall:.1f} s = {rt:.2f}x naive "
                           f"{naive.wall:.1f} s")
            if len(fh.correct) < seeded:
                wrong = [n.split("::")[-1] for n in suite.manifest if n not in fh.correct]
                why.append(f"classified {len(fh.correct)}/{seeded}, not: {', '.join(wrong)}")
            out.append({"target": goal, "met": not why, "value": rt, "why": "; ".join(why)})
        ov = (fh.details.get("overhead") or {}).get("overhead")
        if ov is not None:
            out.append({"target": f"{name}: orchestration overhead <= 10%", "met": ov <= 0.10,
                        "value": ov, "why": f"by {100 * (ov - 0.10):.0f} points: overhead "
                        f"{100 * ov:.0f}% (formula below)" if ov > 0.10 else ""})
        for peer in HUNTERS:
            if get(peer, name):
                out.append(fewer_processes(name, fh, peer, get(peer, name)))
        search = fh.details.get("order_search") or {}
        if search:
            over = {n.split("::")[-1]: v for n, v in search.items() if not v["met"]}
            out.append({"target": f"{name}: polluter found in <= ceil(log2 n)+3 runs",
                        "met": not over, "why": "; ".join(
                            f"{n.split('::')[-1]}: {v['runs']} runs, n={v['candidates']}, "
                            f"bound {v['bound']}" for n, v in search.items())})
    return out


def fewer_processes(suite: str, fh: Result, peer: str, p: Result | None) -> dict:
    """flakehunt against one peer: pytest sessions and interpreters per seeded test found
    (a peer that finds fewer spends its processes on fewer answers); totals beside."""
    goal = f"{suite}: fewer pytest sessions and interpreters than {peer} per finding"
    if not p or fh.sessions is None or p.sessions is None or p.status != "ok":
        return {"target": goal, "met": None, "why": f"{peer} {p.status if p else 'not run'}"
                + (f": {p.note}" if p and p.status != "ok" else "")}
    why, ok = [], True
    for what, mine, theirs in (("sessions", fh.sessions, p.sessions),
                               ("interpreters", fh.interpreters or 0, p.interpreters or 0)):
        each = mine / max(len(fh.found), 1)
        other = theirs / len(p.found) if p.found else math.inf
        ok = ok and each < other
        why.append(f"{what}: flakehunt {mine} for {len(fh.found)} found ({each:.1f} each), "
                   f"{peer} {theirs} for {len(p.found)} found ({other:.1f} each), totals "
                   f"{mine / max(theirs, 1):.2f}x")
    return {"target": goal, "met": ok, "value": {"flakehunt": [fh.sessions, fh.interpreters],
                                                 peer: [p.sessions, p.interpreters]},
            "why": "; ".join(why)}


def child_costs(py: str) -> dict:
    """The child plugin's import and per-test cost, and flakehunt's memory as runs grow
    (bench_run.py's measures, run with flakehunt's interpreter)."""
    import bench_run  # stdlib only, beside this file

    return {"import_ms": bench_run.import_cost(py) / 1000,
            "per_test_us": bench_run.per_test_cost(py=py),
            "memory": bench_run.memory_growth(py=py)}


def cost_targets(costs: dict) -> list[dict]:
    if not costs:
        return []
    imp, mem = costs["import_ms"], costs["memory"]
    return [
        {"target": "plugin import when installed and idle < 5 ms", "met": imp < 5,
         "value": imp, "why": f"{imp:.2f} ms"},
        {"target": "memory flat: peak x4 runs <= 1.2x", "met": mem["ratio"] <= 1.2,
         "value": mem["ratio"], "why": f"{mem['peak_mb_8_runs']:.1f} -> "
         f"{mem['peak_mb_32_runs']:.1f} MB, x{mem['ratio']:.2f}"},
    ]


def judged(t: dict) -> str:
    if t["met"] is None:
        return f"n/a ({t['why']})"
    return f"MET ({t['why']})" if t["met"] and t["why"] else "MET" if t["met"] else (
        f"MISSED {t['why']}")


# ----------------------------------------------------------------------------- main

def main() -> int:
    global TIMEOUT  # the contender functions read it
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suites", default=",".join(SUITES))
    ap.add_argument("--contenders", default=",".join(CONTENDERS))
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--quick", action="store_true",
                    help="10 naive runs, 10 flakefinder copies, exorcist --max-runs 15 "
                         "(flakehunt keeps its defaults)")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "last-peers.json"))
    ap.add_argument("--no-costs", action="store_true",
                    help="skip the child plugin's import, per-test and memory measures")
    ap.add_argument("--timeout", type=float, default=TIMEOUT,
                    help="seconds per contender run (default %(default)s)")
    args = ap.parse_args()
    TIMEOUT = args.timeout
    suite_names = [s for s in args.suites.split(",") if s]
    contenders = [c for c in args.contenders.split(",") if c]
    bad = [s for s in suite_names if s not in SUITES] + [c for c in contenders
                                                         if c not in CONTENDERS]
    if bad:
        ap.error(f"unknown: {', '.join(bad)} (suites {SUITES}, contenders {CONTENDERS})")
    naive_runs, flake_runs, exorcist_runs = (10, 10, 15) if args.quick else (50, 50, 50)

    work = Path(tempfile.mkdtemp(prefix="bench-peers-"))
    say(f"[bench] work dir {work} (logs of every run)")
    broken: dict[str, str] = {}
    for name in dict.fromkeys(["naive-loop", *contenders]):  # naive-loop also collects
        err = ensure_venv(name)
        if err:
            broken[name] = err
            say(f"[venv] {name}: {err}")
    if "naive-loop" in broken:
        say("[bench] the naive-loop venv is needed to collect the suites; giving up")
        return 2

    suites: dict[str, Suite] = {}
    for name in suite_names:
        root = work / "suites" / name
        if name == "websocket":
            shutil.copytree(ROOT / "examples" / "websocket", root,
                            ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
            manifest = WEBSOCKET_MANIFEST
        else:
            manifest = gen_suite.generate(root, args.seed)
        suites[name] = Suite(name, root, manifest)
        suites[name].nodeids = collect(suites[name])
        missing = [t for t in manifest if t not in suites[name].nodeids]
        say(f"[suite] {name}: {len(suites[name].nodeids)} tests collected at {root}")
        if missing:
            say(f"[suite] {name}: seeded tests not collected: {missing}")
            return 2

    results: list[Result] = []
    for sname, suite in suites.items():
        for c in contenders:
            d = work / sname / c
            d.mkdir(parents=True)
            say(f"[run] {c} on {sname} ...")
            if c in broken:
                results.append(Result(c, sname, status="not installed", note=broken[c]))
                continue
            try:
                if c == "naive-loop":
                    r = naive_loop(suite, d, args.seed, naive_runs)
                elif c == "flakehunt":
                    r = flakehunt(suite, d, args.seed)
                elif c == "flakefinder":
                    r = flakefinder(suite, d, flake_runs)
                elif c == "detect-test-pollution":
                    r = detect_test_pollution(suite, d)
                elif c == "flake-exorcist":
                    r = flake_exorcist(suite, d, args.seed, exorcist_runs)
                elif c == "whyflaky":
                    r = whyflaky(suite, d)
                elif c == "flaky-repro":
                    r = flaky_repro(suite, d)
                else:
                    r = flakedoctor(suite, d)
            except Exception as exc:  # noqa: BLE001  (odd output: a row, not a traceback)
                r = Result(c, sname, status="failed", note=f"bench could not read it: "
                           f"{type(exc).__name__}: {exc}"[:300])
            kinds = count_kinds(d / "procs.log")
            r.pytest_procs, r.xdist_workers = kinds["pytest"], kinds["xdist-worker"]
            r.sessions, r.interpreters = kinds["sessions"], kinds["interpreters"]
            say(f"[run] {c} on {sname}: {r.status}, {fmt(r.wall)} s, found "
                f"{len(r.found)}/{r.in_scope}, {r.sessions} pytest sessions, "
                f"{r.interpreters} interpreters")
            results.append(r)

    costs = {}
    if "flakehunt" in contenders and "flakehunt" not in broken and not args.no_costs:
        say("[child] plugin import, per-test cost and memory growth ...")
        costs = child_costs(str(venv_python("flakehunt")))
    lines = table(results, suites)
    tgs = targets(results, suites) + cost_targets(costs)
    lines += ["", "targets"]
    lines += [f"  {t['target']:64} {judged(t)}" for t in tgs]
    fh_over = [(r.suite, r.details["overhead"]) for r in results
               if r.contender == "flakehunt" and r.details.get("overhead")]
    timing = {r.suite: r.details.get("timing") for r in results
              if r.contender == "flakehunt" and r.details.get("timing")}
    if fh_over:
        lines += ["",
                  ("flakehunt orchestration overhead = wall / ideal - 1, ideal = max(longest "
                   "run, sum(run duration x CPUs it keeps busy) / CPUs)"),
                  ("  (CPUs busy as flakehunt's scheduler counts them: xdist workers, quota "
                   "share, contended = all; the ideal is a perfect packing of the same runs"),
                  ("  with no collection, planning, waits between dependent follow-up batches "
                   "or classification: a lower bound, so this overhead is an upper bound)")]
        for sname, o in fh_over:
            lines.append(f"  {sname}: wall {o['wall']:.1f} s, sum of run durations "
                         f"{o['sum_durations']:.1f} s, CPU-weighted {o['cpu_seconds']:.1f} s / "
                         f"{o['cpus']} CPUs -> ideal {o['ideal']:.1f} s, overhead "
                         f"{100 * o['overhead']:.0f}%")
            if o["no_run_in_flight"] is not None:
                lines.append(f"  {'':{len(sname)}}  no run in flight for "
                             f"{o['no_run_in_flight']:.1f} s of the wall (start-up, collection, "
                             "planning, waiting on a batch, classification)")
            if timing.get(sname):
                lines.append(f"  {'':{len(sname)}}  flakehunt's own timing: " + ", ".join(
                    f"{k} {v}" for k, v in timing[sname].items()))
    if costs:
        cost = costs["per_test_us"]
        mem = costs["memory"]
        lines += ["", "flakehunt's child plugin (benchmarks/bench_run.py, flakehunt's venv)",
                  f"  import when installed and idle: {costs['import_ms']:.2f} ms",
                  "  per-test wall on 400 trivial tests, best of 3: " + ", ".join(
                      f"{k} {v:.0f} us" for k, v in cost.items()),
                  f"  flakehunt's peak memory: {mem['peak_mb_8_runs']:.1f} MB for 8 runs, "
                  f"{mem['peak_mb_32_runs']:.1f} MB for 32 runs of {mem['tests']} tests "
                  f"(x{mem['ratio']:.2f} for x{mem['results_ratio']:.0f} the results)"]
    lines += ["",
              ("columns: find-all = seconds until every seeded test was seen both passing "
               "and failing (never: not all were); found = seeded tests reported flaky / "
               "those in its scope;"),
              ("  FP = other tests reported flaky; classified = category AND fixture (AND, for "
               "state-leak, polluter) right / seeded; polluter = victims given a true polluter;"),
              ("  sessions = pytest sessions (a PYTEST_PLUGINS hook; a warm-forked run is one, "
               "an xdist worker's is not); interp = every Python process the contender's venv "
               "started (its own CLI, warm parents, xdist workers included);"),
              ("  pytest / xdist = fresh pytest interpreters and xdist workers, counted by the "
               ".pth hook. Peers' category words: "
               + "; ".join(f"{p} {m}" for p, m in PEER_CATEGORY.items())
               + " (no peer names a fixture).")]
    print("\n".join(lines))

    data = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                    "platform": sys.platform},
        "settings": {"seed": args.seed, "quick": args.quick, "naive_runs": naive_runs,
                     "flake_runs": flake_runs, "exorcist_max_runs": exorcist_runs,
                     "timeout_s": TIMEOUT, "workdir": str(work)},
        "versions": {c: versions(c) for c in dict.fromkeys(["naive-loop", *contenders])
                     if c not in broken},
        "suites": {n: {"tests": len(s.nodeids), "manifest": s.manifest}
                   for n, s in suites.items()},
        "results": [asdict(r) for r in results],
        "targets": tgs,
        "child_costs": costs,
        "peer_category": PEER_CATEGORY,
    }
    Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
    say(f"[bench] wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
