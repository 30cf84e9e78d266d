"""Prove the fix: each root cause's patch, applied in a scratch copy of the suite, run
under the conditions that failed.

For every cluster (:mod:`flakehunt.clusters`) with a patch (:mod:`flakehunt.patch`), in
order: copy the suite's tree into a temporary folder, apply the patches verified so far
and this one with ``git apply``, then

1. rerun each member test's reproducer (the very command the hunt verified: same tests
   before it, seeds, workers, profile) as often as it takes to rule out, at 95%
   (:func:`flakehunt.stats.runs_needed`, at least :data:`MIN_TRIALS`), the lower end of
   the 95% interval of the reproducer's own measured failure rate: a reproducer of the
   test alone repeats it inside one process (``--flakehunt-count``; its rate per
   execution), one of several tests runs as that many processes (its rate per run);
2. run the whole selection once, serially, in a shuffled order never used by the hunt.

The patch is ``verified`` when every reproducer ran its test and it never failed, and
nothing failed in the shuffled run that was not already flaky or failing in the hunt;
otherwise ``proposed``, with what failed. Later patches are made against the tree with
the verified ones applied, so the verified patches apply in order (``NN-``). Runs of
the scratch copy are not the hunt's: they are counted in each fix's evidence only.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from flakehunt import patch, racefix
from flakehunt.classify.facts import leaked_by
from flakehunt.collect import Collected
from flakehunt.command import Suite
from flakehunt.hunt import child_side, make_scheduler
from flakehunt.model import (
    Cluster,
    Finding,
    Fix,
    HuntResult,
    Outcome,
    Purpose,
    RunResult,
    RunSpec,
    RunStatus,
    Verdict,
)
from flakehunt.scheduler import ChildLauncher, QuietProgress
from flakehunt.settings import HuntSettings
from flakehunt.stats import runs_needed, wilson

#: never fewer trials of a reproducer than this, whatever its rate
MIN_TRIALS = 3
#: never more (a rate below 3% is not proven gone by this many: the evidence says so)
MAX_TRIALS = 100
#: folders never copied into the scratch copy
IGNORE = (".git", ".hg", ".venv", "venv", ".tox", ".nox", "node_modules", "__pycache__",
          ".mypy_cache", ".ruff_cache", ".pytest_cache", ".flakehunt")


def prove(result: HuntResult, settings: HuntSettings,
          note: Callable[[str], None] = lambda text: None) -> HuntResult:
    """The result with each cluster's patch made and verified (or why not), and every
    flaky test's ``fix``."""
    root = Path(result.rootdir)
    overlay: dict[str, str] = {}  # files as the verified patches so far left them

    def read(rel: str) -> str | None:
        if rel in overlay:
            return overlay[rel]
        p = root / rel
        return p.read_text(encoding="utf-8") if p.is_file() else None

    done: list[Cluster] = []
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="flakehunt-fix-") as tmp:
        for c in result.clusters:
            made = patch.make(c, read, seen(result, c))
            if isinstance(made, str):
                done.append(replace(c, fix=Fix("none", made)))
                continue
            name = f"{sum(1 for d in done if d.fix.patch) + 1:02d}-{c.slug}.patch"
            note(f"verifying {name} ({len(c.tests)} test(s))")
            scratch = Path(tmp) / name
            fix = Prover(result, settings, scratch).verify(c, made, overlay)
            done.append(replace(c, fix=replace(fix, patch=name, diff=made.diff)))
            if fix.status == "verified":
                overlay[made.path] = made.new
    return with_fixes(result, tuple(done), time.monotonic() - t0)


def seen(result: HuntResult, c: Cluster) -> patch.Seen:
    """What the hunt's runs showed of the cluster beyond its findings: the dead
    ``event_loop`` overrides collection found, the scope of the culprit's fixture."""
    fixture = c.culprit.fixture if c.culprit is not None else None
    scope = next((entry.get("scope") for r in result.runs for t in r.results
                  if t.nodeid in c.tests for entry in t.evidence.get("fixtures", [])
                  if fixture and entry.get("name") == fixture), None)
    dead = result.settings.get("dead_event_loop") or ()
    failures = [(t.failure.message, fa) for r in result.runs for t in r.results
                if t.nodeid in c.tests and t.failure is not None
                for fa in t.evidence.get("failure_anatomy", [])]
    return patch.Seen(dead_event_loop=tuple(dead), fixture_scope=scope,
                      stream=racefix.stream_race(failures), reset_passed=reset_passed(result, c),
                      leaked=tuple((ch.get("kind") or "global", ch.get("what", ""))
                                   for ch in leaked_by(list(c.polluter), list(result.runs))))


def reset_passed(result: HuntResult, c: Cluster) -> tuple[str, str] | None:
    """(kind, target) of the first state item a follow-up run reset alone right before
    one of the cluster's tests, after which that test passed."""
    for r in result.runs:
        if r.spec.purpose is not Purpose.RESET or not r.spec.reset:
            continue
        try:
            request = json.loads(r.spec.reset)
        except ValueError:
            continue
        before = request.get("before")
        if before in c.tests and any(t.nodeid == before and t.outcome is Outcome.PASSED
                                     for t in r.results):
            return str(request.get("kind")), str(request.get("target"))
    return None


def with_fixes(result: HuntResult, clusters: tuple[Cluster, ...],
               seconds: float = 0.0) -> HuntResult:
    """The clusters and each flaky test's fix in the result; ``timing.fixes``: the wall
    seconds making and verifying the patches took."""
    by_test = {t: c.fix for c in clusters for t in c.tests}
    findings = tuple(replace(f, fix=by_test[f.nodeid]) if f.nodeid in by_test else f
                     for f in result.findings)
    timing = {**result.timing, "fixes": round(seconds, 3)}
    return replace(result, clusters=clusters, findings=findings, timing=timing)


@dataclass
class Prover:
    result: HuntResult
    settings: HuntSettings
    scratch: Path

    def verify(self, c: Cluster, made: patch.Patch, overlay: dict[str, str]) -> Fix:
        suite = self.scratch / "suite"
        try:
            copy_tree(Path(self.result.rootdir), suite, overlay)
        except OSError as exc:
            return Fix("proposed", f"not verified: cannot copy the suite: {exc}")
        applied = git_apply(suite, made.diff)
        if applied:
            return Fix("proposed", f"not verified: git apply failed: {applied}")
        findings = {f.nodeid: f for f in self.result.findings}
        plans = {t: self.trials(findings[t]) for t in c.tests}
        missing = [t for t, p in plans.items() if p is None]
        if missing:
            return Fix("proposed", "not verified: no reproducer of " + ", ".join(missing))
        shuffle = RunSpec(index=0, order=f"hash:{random.Random(self.result.seed).getrandbits(31)}",
                          random_seed=self.result.seed + 1, purpose=Purpose.REORDER)
        specs = [s for p in plans.values() if p for s in p] + [shuffle]
        runs = self.run(suite, specs)
        return judge(c, findings, runs[:-1], runs[-1], len(specs) - 1)

    def trials(self, f: Finding) -> list[RunSpec] | None:
        """The reproducer's spec, repeated as its rate needs (None: no reproducer run)."""
        launcher = ChildLauncher(Suite(self.settings.python, Path(self.result.rootdir),
                                       self.result.selection, self.settings.pytest_args,
                                       self.settings.evidence, child_side()),
                                 self.settings.cwd)
        wanted = (f.reproduce or "").split("  # ", 1)[0]
        same = [r for r in self.result.runs if r.spec.purpose is not Purpose.SWEEP
                and launcher.command(r.spec) == wanted]
        if not wanted or not same:
            return None
        spec = replace(same[-1].spec, purpose=Purpose.REPRO)
        alone = spec.tests == (f.nodeid,)
        # per execution for the test alone repeated, per process for several tests
        seen = [[t.outcome.bad for t in r.results if t.nodeid == f.nodeid] for r in same]
        tally = [x for got in seen for x in got] if alone else [any(got) for got in seen if got]
        # the lower end of the reproducer's measured rate: its trials rule that out
        rate = wilson(sum(tally), len(tally))[0] if tally else f.failure_rate
        n = min(MAX_TRIALS, max(MIN_TRIALS, runs_needed(rate) or MAX_TRIALS))
        if alone:  # repeats inside one process: its whole protocol, n times
            return [replace(spec, count=max(spec.count, n))]
        return [spec] * n

    def run(self, suite: Path, specs: list[RunSpec]) -> list[RunResult]:
        """The specs' runs of the scratch copy, in spec order."""
        collected = Collected(suite, tuple(f.nodeid for f in self.result.findings),
                              self.result.selection, {})
        got: list[RunResult] = []
        work = self.scratch / "runs"
        settings = replace(self.settings, evidence=False)
        suite_ = Suite(settings.python, collected.rootdir, collected.selection,
                       settings.pytest_args, settings.evidence, child_side())
        # few runs of a copy: fresh processes, no warm parent to preload for it
        launcher = ChildLauncher(suite_, settings.cwd, fresh="verification of a patch")
        scheduler = make_scheduler(settings, collected, work, None, QuietProgress(),
                                   got.append, launcher)
        scheduler.stream({"fix": specs}, lambda key, runs: [])
        return sorted(got, key=lambda r: r.spec.index)


def judge(c: Cluster, findings: dict[str, Finding], trials: list[RunResult],
          shuffled: RunResult, planned: int) -> Fix:
    """``verified`` only when every trial ran its test and none failed, and the shuffled
    run newly failed nothing; else ``proposed`` with what failed."""
    problems = []
    for t in c.tests:
        # a reproducer of the whole selection (an xdist run) is every member's trial
        mine = [r for r in trials if (r.spec.tests[-1] == t if r.spec.tests
                                      else any(x.nodeid == t for x in r.results))]
        execs = [x for r in mine for x in r.results if x.nodeid == t]
        bad = sum(1 for x in execs if x.outcome.bad)
        short = sum(1 for r in mine if r.status is not RunStatus.OK and not r.results)
        if bad or short or not execs:
            problems.append(f"{t} failed {bad}/{len(execs)} reproducer executions"
                            + (f" ({short} run(s) did not end normally)" if short else ""))
    known_bad = {n for n, f in findings.items() if f.verdict in (Verdict.FLAKY, Verdict.FAILING)}
    newly = sorted({x.nodeid for x in shuffled.results if x.outcome.bad}
                   - (known_bad - set(c.tests)))
    if shuffled.status is not RunStatus.OK or not shuffled.results:
        problems.append(f"the shuffled run of the whole selection ended {shuffled.status}")
    if newly:
        problems.append("in the shuffled run of the whole selection failed: " + ", ".join(newly))
    ran = sum(1 for r in trials for x in r.results if x.nodeid in c.tests)
    summary = (f"{ran} execution(s) of the failing test(s) in {len(trials)} reproducer "
               f"run(s) of the patched copy "
               f"under the hunt's conditions, then the whole selection once in a shuffled "
               f"order ({shuffled.spec.order}, {len(shuffled.results)} tests)")
    if problems:
        return Fix("proposed", "not verified: " + "; ".join(problems) + f" ({summary})")
    return Fix("verified", f"passed: {summary}; nothing newly failed")


def copy_tree(src: Path, dst: Path, overlay: dict[str, str]) -> None:
    """The suite's tree (without VCS, virtualenvs, caches), with ``overlay``'s files."""
    shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns(*IGNORE))
    for rel, text in overlay.items():
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        (dst / rel).write_text(text, encoding="utf-8")


def git_apply(where: Path, diff: str, check_only: bool = False) -> str:
    """``git apply --check`` the diff in ``where``, then apply it (unless ``check_only``);
    '' or the first line of what went wrong."""
    for extra in (["--check"], *([] if check_only else [[]])):
        try:
            proc = subprocess.run(["git", "apply", *extra, "-"], cwd=where, input=diff,
                                  capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as exc:
            return f"cannot run git: {exc}"
        if proc.returncode:
            return (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[0]
    return ""
