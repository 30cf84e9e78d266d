"""Real projects: known order-dependent tests from IDoFT, hunted with flakehunt's defaults.

    python3 benchmarks/real_projects.py [--only pytm,tale] [--mirror DIR] [--setup-only]
        [--runs 50] [--seeds 1,2,3] [--plain-runs 50] [--json PATH]

The projects, their commits, the victims and how each row was checked by hand are
in benchmarks/real_projects.toml (rows of py-data.csv of the International Dataset
of Flaky Tests, TestingResearchIllinois/idoft). For each project, one after another:

1. set-up (first use only): clone the repository at the listed commit into
   WORK/<name>/src (from --mirror DIR/<owner>+<name>/repo when given, else from
   GitHub), build WORK/<name>/venv and install the project's requirements into it
   (with flakehunt's own dependencies: pytest, pytest-xdist, pytest-repeat).
   WORK is $FLAKEHUNT_REAL_DIR, by default ~/.cache/flakehunt-real: outside this
   repository, or pytest would take flakehunt's own pyproject.toml as the
   configuration of every project that has none;
2. hunt the victims' test files with default options, once per --seeds seed, by the
   flakehunt running this script (this checkout), the project's interpreter given:
   `flakehunt run FILES --runs 50 --python WORK/<name>/venv/bin/python --json ...`
   (cwd: the checkout);
3. time 50 plain `python -m pytest -q FILES` runs of the same selection, right after
   the hunt, so the ratio compares like with like on a busy machine;
4. check the polluter flakehunt named for each victim: run it and the victim in one
   pytest process (`-p no:randomly`, in that order) and see the victim fail; the
   victim alone must pass;
5. score each known victim: found flaky? category state-leak? polluter right?

Prints a table and writes every number to --json (default benchmarks/last-real.json).
Nothing of the projects is ever in this repository.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "real_projects.toml"
# Outside this repository on purpose: pytest looks for its configuration upwards from
# the tests, and below this repository it would find flakehunt's own pyproject.toml
# (its rootdir, addopts) for every project that has no configuration of its own.
WORK = Path(os.environ.get("FLAKEHUNT_REAL_DIR", Path.home() / ".cache" / "flakehunt-real"))
HUNT_TIMEOUT = 30 * 60


@dataclass(frozen=True)
class Victim:
    nodeid: str
    idoft: str                    # the row's category in py-data.csv (OD-Vic, ...)
    polluters: tuple[str, ...]    # polluters seen by hand (informative; not required)


@dataclass(frozen=True)
class Project:
    name: str
    repo: str                     # owner/name on GitHub
    commit: str
    selection: tuple[str, ...]    # what is hunted and run plainly
    requirements: tuple[str, ...]  # pip arguments besides flakehunt
    install: bool                 # pip install the checkout itself
    victims: tuple[Victim, ...]


def load(path: Path = DATA) -> list[Project]:
    data = tomllib.loads(path.read_text())
    return [Project(name=p["name"], repo=p["repo"], commit=p["commit"],
                    selection=tuple(p["selection"]), requirements=tuple(p.get("requirements", ())),
                    install=bool(p.get("install", False)),
                    victims=tuple(Victim(v["nodeid"], v["idoft"], tuple(v.get("polluters", ())))
                                  for v in p["victim"]))
            for p in data["project"]]


# --- scoring (pure: a hunt's JSON and the polluter checks in, one row per victim out) ---

def finding(report: dict[str, Any], nodeid: str) -> dict[str, Any] | None:
    return next((t for t in report.get("tests", ()) if t.get("nodeid") == nodeid), None)


def polluter_checks_needed(project: Project, report: dict[str, Any]) -> dict[str, list[str]]:
    """victim -> the polluters flakehunt named for it (only victims it named some for)."""
    out = {}
    for v in project.victims:
        f = finding(report, v.nodeid)
        if f and f.get("polluter"):
            out[v.nodeid] = list(f["polluter"])
    return out


def score(project: Project, report: dict[str, Any],
          checks: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per known victim. checks[victim] = {"after": outcome after the named
    polluter(s) in one process, "alone": outcome alone}; a polluter is right when the
    victim failed after it and passed alone."""
    rows = []
    for v in project.victims:
        f = finding(report, v.nodeid) or {}
        check = checks.get(v.nodeid, {})
        named = list(f.get("polluter") or ())
        polluter_ok = bool(named) and check.get("after") in ("failed", "error") \
            and check.get("alone") == "passed"
        found = f.get("verdict") == "flaky"
        category_ok = f.get("category") == "state-leak"
        rows.append({
            "project": project.name, "victim": v.nodeid, "idoft": v.idoft,
            "verdict": f.get("verdict", "not reported"),
            "failed": f"{f.get('failed', 0) + f.get('errored', 0)}/{f.get('runs', 0)}",
            "category": f.get("category"), "polluter": named,
            "polluter_known": bool(set(named) & set(v.polluters)),
            "check": check, "found": found, "category_ok": category_ok,
            "polluter_ok": polluter_ok, "ok": found and category_ok and polluter_ok,
        })
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {"victims": len(rows), **{k: sum(bool(r[k]) for r in rows)
                                     for k in ("found", "category_ok", "polluter_ok", "ok")}}


# --- set-up ---

def say(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


def python_of(project: Project) -> Path:
    return WORK / project.name / "venv" / "bin" / "python"


def source_of(project: Project, mirror: Path | None) -> str:
    if mirror is not None:
        base = mirror / project.repo.replace("/", "+") / "repo"
        for candidate in (base / ".git", base):
            if (candidate / "HEAD").exists():
                return str(candidate)
    return f"https://github.com/{project.repo}.git"


def sh(argv: list[str], cwd: Path | None = None, **kw: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} ...: {(proc.stderr or proc.stdout)[-400:]}")
    return proc


def setup(project: Project, mirror: Path | None) -> Path:
    """The checkout at the listed commit and its venv (built once, reused after)."""
    home = WORK / project.name
    src = home / "src"
    if not (src / ".git").exists():
        say(f"[{project.name}] cloning {project.repo} at {project.commit[:10]}")
        sh(["git", "clone", "-q", "--no-checkout", source_of(project, mirror), str(src)])
        sh(["git", "-c", "advice.detachedHead=false", "checkout", "-q", project.commit], cwd=src)
    marker = home / "installed.json"
    wanted = {"requirements": list(project.requirements), "install": project.install}
    if not marker.exists() or json.loads(marker.read_text()) != wanted:
        say(f"[{project.name}] building {home / 'venv'}")
        sh([sys.executable, "-m", "venv", str(home / "venv")])
        extra = ["-e", str(src)] if project.install else []
        sh([str(python_of(project)), "-m", "pip", "install", "-q", str(ROOT),
            *project.requirements, *extra])
        marker.write_text(json.dumps(wanted))
    return src


# --- runs ---

def victim_outcome(src: Path, python: Path, tests: list[str], victim: str) -> str:
    """The victim's outcome when `tests` run in this order in one plain pytest process."""
    xml = src.parent / "check.xml"
    xml.unlink(missing_ok=True)
    subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:randomly", "-p",
                    "no:cacheprovider", "-p", "no:flakehunt", f"--junitxml={xml}", *tests],
                   cwd=src, capture_output=True, text=True, timeout=600)
    if not xml.exists():
        return "no report"
    path, _, name = victim.partition("::")
    module = path.removesuffix(".py").replace("/", ".")
    *classes, test = name.split("::")
    classname = ".".join([module, *classes])
    for case in ET.parse(xml).getroot().iter("testcase"):
        if case.get("classname") == classname and case.get("name") == test:
            kinds = {child.tag for child in case}
            return ("failed" if "failure" in kinds else "error" if "error" in kinds
                    else "skipped" if "skipped" in kinds else "passed")
    return "not run"


def check_polluters(project: Project, src: Path, report: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for victim, polluters in polluter_checks_needed(project, report).items():
        py = python_of(project)
        out[victim] = {"after": victim_outcome(src, py, [*polluters, victim], victim),
                       "alone": victim_outcome(src, py, [victim], victim)}
    return out


def hunt(project: Project, src: Path, runs: int,
         seed: int | None = None) -> tuple[float, dict[str, Any], int]:
    """One default hunt of the project by THIS checkout's flakehunt, the project's own
    interpreter given with --python (nothing of flakehunt's is used from its venv)."""
    out = src.parent / "hunt.json"
    out.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "flakehunt", "run", *project.selection, "--runs", str(runs),
            "--python", str(python_of(project)), "--json", str(out), "--no-progress",
            *(["--seed", str(seed)] if seed is not None else [])]
    say(f"[{project.name}] {' '.join(argv[3:])}")
    start = time.monotonic()
    log_name = "hunt.log" if seed is None else f"hunt-{seed}.log"
    with open(src.parent / log_name, "w") as log:
        proc = subprocess.run(argv, cwd=src, stdout=log, stderr=subprocess.STDOUT,
                              timeout=HUNT_TIMEOUT)
    wall = time.monotonic() - start
    report = json.loads(out.read_text()) if out.exists() else {}
    if seed is not None and out.exists():
        out.replace(src.parent / f"hunt-{seed}.json")
    return wall, report, proc.returncode


def plain(project: Project, src: Path, runs: int) -> tuple[float, int]:
    """Wall time of `runs` plain pytest runs of the selection, and how many failed."""
    start, failed = time.monotonic(), 0
    for _ in range(runs):
        proc = subprocess.run([str(python_of(project)), "-m", "pytest", "-q", "-p",
                               "no:cacheprovider", *project.selection],
                              cwd=src, capture_output=True, timeout=600)
        failed += proc.returncode != 0
    return time.monotonic() - start, failed


def one_hunt(project: Project, src: Path, runs: int, seed: int | None) -> dict[str, Any]:
    wall, report, code = hunt(project, src, runs, seed)
    purposes = [r.get("purpose") for r in report.get("runs", ())]
    failed = {}
    if not report:  # no report: say why, from the end of the hunt's own output
        log = src.parent / ("hunt.log" if seed is None else f"hunt-{seed}.log")
        lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
        failed = {"error": f"hunt exit {code}: {lines[-1] if lines else 'no output'}"}
    return {**failed, "seed": report.get("seed"), "exit_code": code,
            "hunt_wall": round(wall, 1),
            "sweep_runs": purposes.count("sweep"), "screen_runs": purposes.count("screen"),
            "all_runs": len(purposes),
            "flaky": [t["nodeid"] for t in report.get("tests", ())
                      if t.get("verdict") == "flaky"],
            "warnings": report.get("warnings", []),
            "rows": score(project, report, check_polluters(project, src, report))}


def measure(project: Project, mirror: Path | None, runs: int, plain_runs: int,
            seeds: list[int | None] | None = None) -> dict[str, Any]:
    """The project's hunts (one per seed; None: a seed of flakehunt's choosing), then
    its plain runs; ``rows``: every hunt's rows."""
    try:
        src = setup(project, mirror)
    except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
        return {"project": project.name, "error": f"set-up failed: {exc}", "rows": []}
    hunts = [one_hunt(project, src, runs, seed) for seed in seeds or [None]]
    plain_wall, plain_failed = plain(project, src, plain_runs)
    wall = sum(h["hunt_wall"] for h in hunts) / len(hunts)
    errors = [h["error"] for h in hunts if h.get("error")]
    return {**({"error": errors[0]} if errors else {}),
            "project": project.name, "repo": project.repo, "commit": project.commit,
            "selection": list(project.selection), "hunts": hunts,
            "hunt_wall": round(wall, 1), "plain_wall": round(plain_wall, 1),
            "plain_runs": plain_runs, "plain_failed_runs": plain_failed,
            "ratio": round(wall / plain_wall, 2) if plain_wall else None,
            "rows": [r for h in hunts for r in h["rows"]]}


# --- output ---

def table(results: list[dict[str, Any]]) -> list[str]:
    """One line per known victim over the project's hunts: found in how many, its
    failures per hunt, the category, the named polluter right in how many."""
    plain_runs = next((r["plain_runs"] for r in results if "plain_runs" in r), 50)
    head = ["project", "victim", "found", "failed", "category", "polluter", "hunt s",
            f"{plain_runs} plain s", "ratio"]
    lines = [head]
    for res in results:
        if res.get("error"):
            lines.append([res["project"], res["error"][:60], *[""] * 7])
        by_victim: dict[str, list[dict[str, Any]]] = {}
        for r in res["rows"]:
            by_victim.setdefault(r["victim"], []).append(r)
        for victim, rows in by_victim.items():
            k = len(rows)
            found = sum(r["found"] for r in rows)
            right = sum(r["polluter_ok"] for r in rows)
            cats = sorted({r["category"] or "-" for r in rows})
            lines.append([res["project"], victim.split("::", 1)[1],
                          rows[0]["verdict"] if k == 1 else f"{found}/{k}",
                          ",".join(r["failed"] for r in rows), "/".join(cats),
                          ("right" if right else "-" if not rows[0]["polluter"] else "wrong")
                          if k == 1 else f"{right}/{k}",
                          f"{res['hunt_wall']:.0f}", f"{res['plain_wall']:.0f}",
                          f"{res['ratio']:.1f}x"])
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in lines]


def head() -> str:
    proc = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                          capture_output=True, text=True)
    return proc.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="", help="comma-separated project names")
    ap.add_argument("--mirror", type=Path, help="folder of local git mirrors <owner>+<name>/repo")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--plain-runs", type=int, default=50)
    ap.add_argument("--seeds", default="",
                    help="comma-separated hunt seeds: one hunt per seed (default: one hunt, "
                         "a seed of flakehunt's choosing)")
    ap.add_argument("--setup-only", action="store_true")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "last-real.json")
    args = ap.parse_args(argv)
    projects = [p for p in load() if not args.only or p.name in args.only.split(",")]
    seeds: list[int | None] = [int(x) for x in args.seeds.split(",") if x.strip()] or [None]
    if args.setup_only:
        for p in projects:
            say(f"[{p.name}] {setup(p, args.mirror)}")
        return 0
    results = []
    for p in projects:
        results.append(measure(p, args.mirror, args.runs, args.plain_runs, seeds))
        args.json.write_text(json.dumps({"flakehunt": head(), "results": results,
                                         "summary": summary([r for res in results
                                                             for r in res["rows"]])},
                                        indent=2) + "\n")
    rows = [r for res in results for r in res["rows"]]
    print("\n".join(table(results)))
    print(f"victims {summary(rows)}; JSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
