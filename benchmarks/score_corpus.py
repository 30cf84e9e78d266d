"""Score flakehunt's hunts of the corpus against each suite's truth.

    python benchmarks/score_corpus.py [--runs 50] [--k 5] [--seed 1] [--only NAME...]
        [--jobs N] [--json PATH] [--keep DIR] [--rescore DIR] [-- FLAKEHUNT_ARGS...]

Every suite of benchmarks/corpus/ (a folder with pytest.ini and truth.toml) is copied to
a temporary directory and hunted K times, with seeds SEED..SEED+K-1, by the installed
`flakehunt run . --runs N --seed S --json ...` (its default settings otherwise; anything
after `--` is passed on). Each hunt's JSON is scored against the truth:

- recall: truth's flaky tests reported `flaky` / truth's flaky tests;
- category, fixture: right / flaky tests found (fixture: the suspected fixture is one
  the truth accepts; "(none)" in the truth accepts no fixture);
- polluter: the reported polluters (or state-setters) are all ones the truth accepts,
  and there is at least one / found tests whose truth names polluters;
- culprit: the finding's culprit is one the truth accepts (its ``target``) and
  ``verified`` (a reset of it alone made the test pass) / found tests whose truth
  names culprits (the optional ``culprit = [...]`` key);
- false flaky: a test the truth does not call flaky reported `flaky` (an
  ``[[incidental]]`` test, one that can fail as a knock-on of a seeded flaky test,
  with ``why``, may be reported either way);
- false failing: a test the truth does not call failing reported `failing` (an
  order-dependent test called failing, a stable test called failing);
- reliability: the share of hunts that found every flaky test of the suite.

A table goes to stdout; every number, and every wrong answer with what was expected,
to --json (default benchmarks/last-corpus.json). --keep DIR keeps each hunt's JSON;
--rescore DIR scores kept JSONs without hunting (a corpus measured in pieces).
The scoring (load_truth, score_hunt, summarize) is pure: tests/unit/test_score_corpus.py.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "benchmarks" / "corpus"
CATEGORIES = ("loop-closed", "state-leak", "race")
NO_FIXTURE = "(none)"
HUNT_TIMEOUT = 30 * 60


# ------------------------------------------------------------------------------ truth

@dataclass(frozen=True)
class Expect:
    """What a correct report says about one flaky test."""

    category: str
    fixtures: tuple[str, ...]
    polluters: tuple[str, ...] = ()
    #: acceptable culprit targets (Culprit.target), verified; empty: not scored
    culprit: tuple[str, ...] = ()


@dataclass(frozen=True)
class Truth:
    flaky: dict[str, Expect]
    failing: frozenset[str] = frozenset()
    #: tests that can fail as a knock-on of a seeded flaky test (a run showed how):
    #: reported flaky is no false flaky, not reported is no miss
    incidental: frozenset[str] = frozenset()

    def named(self) -> set[str]:
        """Every test id the truth names (flaky tests, polluters, failing tests)."""
        ids = set(self.flaky) | set(self.failing) | set(self.incidental)
        for e in self.flaky.values():
            ids.update(e.polluters)
        return ids


def parse_truth(data: dict[str, Any]) -> Truth:
    """A truth file's contents -> Truth; ValueError on anything malformed."""
    unknown = set(data) - {"flaky", "failing", "incidental"}
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}")
    flaky: dict[str, Expect] = {}
    for row in data.get("flaky", []):
        test, category = row.get("test"), row.get("category")
        if not isinstance(test, str) or category not in CATEGORIES:
            raise ValueError(f"a flaky entry needs a test and a category in {CATEGORIES}: {row}")
        fixtures = tuple(row.get("fixtures", ()))
        if not fixtures:
            raise ValueError(f"{test}: list the acceptable fixtures (\"{NO_FIXTURE}\" for none)")
        extra = set(row) - {"test", "category", "fixtures", "polluters", "culprit"}
        if extra or test in flaky:
            raise ValueError(f"{test}: duplicate, or unknown keys {sorted(extra)}")
        flaky[test] = Expect(category, fixtures, tuple(row.get("polluters", ())),
                             tuple(row.get("culprit", ())))
    incidental = set()
    for row in data.get("incidental", []):
        if not isinstance(row.get("test"), str) or not row.get("why") or set(row) - {"test",
                                                                                   "why"}:
            raise ValueError(f"an incidental entry needs a test and why it can fail: {row}")
        incidental.add(row["test"])
    return Truth(flaky, frozenset(data.get("failing", ())), frozenset(incidental))


def load_truth(suite: Path) -> Truth:
    with open(suite / "truth.toml", "rb") as f:
        return parse_truth(tomllib.load(f))


def suites(only: list[str] | None = None) -> list[Path]:
    """The corpus's suites; ``only``: names or shell patterns (``leak_*``), each of
    which must match a suite."""
    found = sorted(p.parent for p in CORPUS.glob("*/truth.toml"))
    if only:
        missing = [pat for pat in only if not any(fnmatch.fnmatchcase(p.name, pat)
                                                   for p in found)]
        if missing:
            raise SystemExit(f"score_corpus: no such suite: {', '.join(sorted(missing))}")
        found = [p for p in found if any(fnmatch.fnmatchcase(p.name, pat) for pat in only)]
    return found


# ------------------------------------------------------------------------------ scoring

@dataclass
class HuntScore:
    """One hunt of one suite against its truth."""

    suite: str
    seed: int
    error: str | None = None
    expected: int = 0
    found: int = 0
    category_right: int = 0
    fixture_right: int = 0
    polluter_expected: int = 0
    polluter_right: int = 0
    culprit_expected: int = 0
    culprit_right: int = 0
    false_flaky: list[str] = field(default_factory=list)
    false_failing: list[str] = field(default_factory=list)
    missed: list[dict[str, Any]] = field(default_factory=list)
    wrong: list[dict[str, Any]] = field(default_factory=list)
    sweep_runs: int = 0
    wall: float = 0.0

    @property
    def found_all(self) -> bool:
        return self.error is None and self.found == self.expected


def fixture_ok(got: str | None, want: tuple[str, ...]) -> bool:
    return got in want if got else NO_FIXTURE in want


def polluter_ok(got: list[str] | None, want: tuple[str, ...]) -> bool:
    return bool(got) and set(got or ()) <= set(want)


def judge(score: HuntScore, test: dict[str, Any], want: Expect) -> None:
    """Count one found flaky test's category, fixture and polluter; note what was wrong."""
    ok_cat = test.get("category") == want.category
    ok_fix = fixture_ok(test.get("suspected_fixture"), want.fixtures)
    score.category_right += ok_cat
    score.fixture_right += ok_fix
    ok_pol = True
    if want.polluters:
        score.polluter_expected += 1
        ok_pol = polluter_ok(test.get("polluter"), want.polluters)
        score.polluter_right += ok_pol
    ok_cul = True
    if want.culprit:
        culprit = test.get("culprit") or {}
        score.culprit_expected += 1
        ok_cul = bool(culprit.get("verified")) and culprit.get("target") in want.culprit
        score.culprit_right += ok_cul
    if not (ok_cat and ok_fix and ok_pol and ok_cul):
        score.wrong.append({
            "test": test["nodeid"], "category": [test.get("category"), want.category],
            "fixture": [test.get("suspected_fixture"), list(want.fixtures)],
            "polluter": [test.get("polluter"), list(want.polluters)],
            "culprit": [test.get("culprit"), list(want.culprit)],
            "failed": f"{test.get('failed', 0)}/{test.get('runs', 0)}",
            "evidence": test.get("evidence", [])[:6]})


def score_hunt(suite: str, seed: int, result: dict[str, Any] | None, truth: Truth,
               error: str | None = None) -> HuntScore:
    """A hunt's JSON (None: the hunt produced none) scored against the suite's truth."""
    score = HuntScore(suite, seed, error=error, expected=len(truth.flaky))
    if result is None:
        score.error = error or "no result"
        score.missed = [{"test": t, "verdict": None} for t in truth.flaky]
        return score
    tests = {t["nodeid"]: t for t in result.get("tests", [])}
    score.sweep_runs = sum(1 for r in result.get("runs", []) if r.get("purpose") == "sweep")
    for nodeid, want in truth.flaky.items():
        test = tests.get(nodeid)
        verdict = test.get("verdict") if test else None
        if verdict == "flaky":
            score.found += 1
            judge(score, test, want)  # type: ignore[arg-type]
        else:
            score.missed.append({"test": nodeid, "verdict": verdict,
                                 "failed": f"{(test or {}).get('failed', 0)}/"
                                           f"{(test or {}).get('runs', 0)}"})
    may_flake = truth.flaky.keys() | truth.incidental
    for nodeid, test in tests.items():
        if test.get("verdict") == "flaky" and nodeid not in may_flake:
            score.false_flaky.append(nodeid)
        if test.get("verdict") == "failing" and nodeid not in truth.failing:
            score.false_failing.append(nodeid)
    return score


def ratio(num: int, den: int) -> float | None:
    return None if den == 0 else round(num / den, 4)


def summarize(scores: list[HuntScore]) -> dict[str, Any]:
    """Hunts (of one suite, or of all) -> the rates the table shows."""
    n = len(scores)
    total = {k: sum(getattr(s, k) for s in scores) for k in (
        "expected", "found", "category_right", "fixture_right", "polluter_expected",
        "polluter_right", "culprit_expected", "culprit_right")}
    return {
        "hunts": n, "errors": sum(s.error is not None for s in scores),
        **total,
        "recall": ratio(total["found"], total["expected"]),
        "category": ratio(total["category_right"], total["found"]),
        "fixture": ratio(total["fixture_right"], total["found"]),
        "polluter": ratio(total["polluter_right"], total["polluter_expected"]),
        "culprit": ratio(total["culprit_right"], total["culprit_expected"]),
        "false_flaky": sum(len(s.false_flaky) for s in scores),
        "false_failing": sum(len(s.false_failing) for s in scores),
        "reliability": ratio(sum(s.found_all for s in scores), n),
    }


def report(scores: list[HuntScore]) -> dict[str, Any]:
    """Per suite and overall summaries, and every hunt's details."""
    names = sorted({s.suite for s in scores})
    return {"suites": {name: summarize([s for s in scores if s.suite == name])
                       for name in names},
            "overall": summarize(scores),
            "hunts": [{**asdict(s), "found_all": s.found_all} for s in scores]}


# ------------------------------------------------------------------------------ the table

COLUMNS = ("suite", "hunts", "flaky", "recall", "category", "fixture", "polluter", "culprit",
           "false flaky", "false failing", "reliability")


def pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.0f}%"


def row(name: str, s: dict[str, Any]) -> list[str]:
    hunts = max(s["hunts"], 1)
    err = f" ({s['errors']} err)" if s["errors"] else ""
    return [name, f"{s['hunts']}{err}", str(s["expected"] // hunts), pct(s["recall"]),
            pct(s["category"]), pct(s["fixture"]), pct(s["polluter"]), pct(s["culprit"]),
            str(s["false_flaky"]), str(s["false_failing"]), pct(s["reliability"])]


def table(rep: dict[str, Any]) -> str:
    rows = [row(name, s) for name, s in rep["suites"].items()]
    rows.append(row("overall", rep["overall"]))
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
    line = "| " + " | ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) + " |"
            for r in rows]
    return "\n".join([line, rule, *body[:-1], rule.replace("-", "="), body[-1]])


# ------------------------------------------------------------------------------ hunting

def flakehunt_exe() -> str:
    here = Path(sys.executable).with_name("flakehunt")
    found = str(here) if here.exists() else shutil.which("flakehunt")
    if found is None:
        raise SystemExit("score_corpus: flakehunt is not installed (pip install -e '.[dev]')")
    return found


def hunt(suite: Path, runs: int, seed: int, extra: list[str],
         keep: Path | None) -> HuntScore:
    """Hunt a fresh copy of one suite once and score it."""
    truth = load_truth(suite)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    with tempfile.TemporaryDirectory(prefix=f"corpus-{suite.name}-") as tmp:
        work = Path(tmp) / suite.name
        shutil.copytree(suite, work, ignore=shutil.ignore_patterns("__pycache__"))
        out = Path(tmp) / "result.json"
        argv = [flakehunt_exe(), "run", ".", "--runs", str(runs), "--seed", str(seed),
                "--json", str(out), "--no-history", "--no-progress", "--github", "off",
                "--fail-on", "never", *extra]
        t0 = time.monotonic()
        try:
            proc = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True,
                                  timeout=HUNT_TIMEOUT, check=False)
            error = None if proc.returncode in (0, 1) else (
                f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}")
        except subprocess.TimeoutExpired:
            error = f"timed out after {HUNT_TIMEOUT}s"
        wall = time.monotonic() - t0
        result = json.loads(out.read_text()) if out.exists() else None
        if keep is not None and result is not None:
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(out, keep / f"{suite.name}-{seed}.json")
    score = score_hunt(suite.name, seed, result, truth, error)
    score.wall = round(wall, 1)
    print(f"{suite.name} seed {seed}: found {score.found}/{score.expected}, "
          f"false flaky {len(score.false_flaky)}, false failing {len(score.false_failing)}"
          f"{', ' + score.error if score.error else ''} ({score.wall}s)", file=sys.stderr)
    return score


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=50, help="flakehunt --runs (default 50)")
    ap.add_argument("--k", type=int, default=5, help="hunts per suite, seeds SEED..SEED+K-1")
    ap.add_argument("--seed", type=int, default=1, help="first seed (default 1)")
    ap.add_argument("--only", nargs="+", metavar="NAME",
                    help="only these suites (names or quoted shell patterns: 'leak_*')")
    ap.add_argument("--jobs", type=int, default=1, help="hunts at once (default 1)")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "last-corpus.json"),
                    help="where every number goes ('-': stdout)")
    ap.add_argument("--keep", type=Path, help="keep each hunt's JSON in this folder")
    ap.add_argument("--rescore", type=Path, metavar="DIR",
                    help="hunt nothing: score the JSONs a --keep DIR kept (SUITE-SEED.json) "
                         "for the suites and seeds asked; one missing counts as a hunt "
                         "that gave no result")
    return ap.parse_args(argv), extra


def rescore(kept: Path, suite: Path, seed: int) -> HuntScore:
    """A kept hunt's JSON scored again (a corpus measured in pieces, scored as one)."""
    path = kept / f"{suite.name}-{seed}.json"
    result = json.loads(path.read_text()) if path.exists() else None
    return score_hunt(suite.name, seed, result, load_truth(suite),
                      None if result is not None else f"no kept result {path.name}")


def main(argv: list[str] | None = None) -> int:
    args, extra = parse_args(sys.argv[1:] if argv is None else argv)
    if args.runs < 1 or args.k < 1 or args.jobs < 1:
        print("score_corpus: --runs, --k and --jobs must be at least 1", file=sys.stderr)
        return 2
    jobs = [(s, args.seed + i) for s in suites(args.only) for i in range(args.k)]
    t0 = time.monotonic()
    if args.rescore is not None:
        scores = [rescore(args.rescore, suite, seed) for suite, seed in jobs]
    else:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            scores = list(pool.map(lambda j: hunt(j[0], args.runs, j[1], extra, args.keep),
                                   jobs))
    rep = report(scores)
    rep["command"] = {"runs": args.runs, "k": args.k, "seed": args.seed, "jobs": args.jobs,
                      "flakehunt_args": extra, "wall": round(time.monotonic() - t0, 1)}
    text = json.dumps(rep, indent=2) + "\n"
    if args.json == "-":
        print(table(rep), file=sys.stderr)
        sys.stdout.write(text)
    else:
        Path(args.json).write_text(text)
        print(table(rep))
        print(f"\n{len(scores)} hunts in {rep['command']['wall']}s; details in {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
