"""Scale a hunt out over a CI matrix: ``--shard i/n`` and ``flakehunt merge``.

A shard plans the whole hunt from the seed, then runs only the sweep runs whose
plan index is ``i-1`` modulo ``n``, each keeping its plan index. Merging puts
every shard's sweep runs back in plan order and recomputes the verdicts from
them, with the same code as a single hunt: the same seed gives the same
verdicts, counts and breakdowns as an unsharded hunt of the same runs.
Classification (follow-up runs) happens inside each shard; the merged result
keeps, for each test, what the shard that saw it fail most found. A test
flaky only across shards (it passed in one and failed in another) was not
classified anywhere and is ``unknown``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from flakehunt import verdicts
from flakehunt.errors import UsageError
from flakehunt.model import Category, Finding, HuntResult, Purpose, RunResult, RunSpec, Verdict

#: settings that must agree for results to be shards of one hunt
SAME_PLAN = ("runs", "workers", "profiles", "dist", "selection", "pytest_args")
CARRIED = ("category", "suspected_fixture", "polluter", "evidence", "reproduce", "fix_hint",
           "confidence", "problem", "culprit", "followups")


def parse_shard(text: str) -> tuple[int, int]:
    i, sep, n = text.partition("/")
    try:
        index, count = int(i), int(n)
    except ValueError:
        index = count = 0
    if not sep or count < 1 or not 1 <= index <= count:
        raise UsageError(f"--shard takes i/n with 1 <= i <= n, e.g. 1/4, not {text!r}")
    return index, count


def shard_specs(specs: Sequence[RunSpec], shard: tuple[int, int] | None) -> list[RunSpec]:
    """This shard's sweep runs, each remembering its index in the whole plan."""
    out = [replace(s, plan_index=s.index) for s in specs]
    if shard is None:
        return out
    index, count = shard
    return [s for s in out if s.index % count == index - 1]


def merge(results: Sequence[HuntResult], names: Sequence[str] | None = None) -> HuntResult:
    if not results:
        raise UsageError("merge needs at least one result")
    names = list(names or (f"result {i + 1}" for i in range(len(results))))
    first = results[0]
    for name, r in zip(names, results, strict=False):
        differs = [k for k in SAME_PLAN if r.settings.get(k) != first.settings.get(k)]
        if r.seed != first.seed:
            differs.insert(0, "seed")
        if differs:
            raise UsageError(f"{name} is not a shard of the same hunt as {names[0]}: "
                             f"different {', '.join(differs)}")
    shards = shard_labels(results, names)
    warnings = []
    sweep: dict[int, RunResult] = {}
    followups: list[RunResult] = []
    for name, label, r in zip(names, shards, results, strict=False):
        runs = [run for run in r.runs if run.spec.purpose is Purpose.SWEEP]
        if any(run.spec.plan_index is None for run in runs) or (
                runs and not any(run.results for run in runs)):
            raise UsageError(f"{name} has no per-run results to merge: save it with "
                             "`--json` from this flakehunt version")
        for run in runs:
            index = run.spec.plan_index
            assert index is not None
            if index in sweep:
                raise UsageError(f"sweep run {index} is in more than one result "
                                 f"({name} among them)")
            sweep[index] = run
        followups += [run for run in r.runs if run.spec.purpose is not Purpose.SWEEP]
        warnings += [f"{label}: {w}" for w in r.warnings]
    count = int(shards[0].split("/")[1]) if "/" in shards[0] else 1
    missing = sorted({f"{i}/{count}" for i in range(1, count + 1)} - set(shards))
    if missing:
        warnings.append(f"merged {len(shards)} of {count} shards; missing: {', '.join(missing)}"
                        " (verdicts rest on the runs of the shards given)")
    planned = first.settings.get("runs", len(sweep))
    runs = [replace(run, spec=replace(run.spec, index=i)) for i, run in sorted(sweep.items())]
    base = max([planned, *(i + 1 for i in sweep)])
    runs += [replace(run, spec=replace(run.spec, index=base + k))
             for k, run in enumerate(followups)]
    nodeids = list(dict.fromkeys(f.nodeid for r in results for f in r.findings))
    findings = [carry(f, results, shards, first.settings.get("classify", True))
                for f in verdicts.findings([r for r in runs if r.spec.purpose is Purpose.SWEEP],
                                           nodeids)]
    settings = {k: v for k, v in first.settings.items() if k != "shard"}
    settings.update(shards=list(shards), planned_runs=planned,
                    detection=verdicts.detection(findings))
    return HuntResult(rootdir=first.rootdir, selection=first.selection, seed=first.seed,
                      runs=tuple(runs), findings=tuple(findings), settings=settings,
                      warnings=tuple(warnings), interrupted=max(r.interrupted for r in results))


def shard_labels(results: Sequence[HuntResult], names: Sequence[str]) -> list[str]:
    labels: list[str] = [r.settings.get("shard") or "" for r in results]
    if len(results) == 1:
        return [labels[0] or "1/1"]
    for name, label in zip(names, labels, strict=False):
        if not label:
            raise UsageError(f"{name} is not a shard (run with --shard i/n) and cannot be "
                             "merged with others")
    counts = {label.split("/")[1] for label in labels}
    if len(counts) > 1:
        raise UsageError(f"the shards split the hunt differently: {', '.join(labels)}")
    seen = set()
    for name, label in zip(names, labels, strict=False):
        if label in seen:
            raise UsageError(f"shard {label} given twice ({name})")
        seen.add(label)
    return labels


def carry(f: Finding, results: Sequence[HuntResult], shards: Sequence[str],
          classified: bool) -> Finding:
    """Keep what the shard that saw the test fail most found out about it."""
    same = [(g, label) for r, label in zip(results, shards, strict=False) for g in r.findings
            if g.nodeid == f.nodeid and g.verdict is f.verdict]
    if same:
        best, label = max(same, key=lambda pair: pair[0].bad)
        fields = {k: getattr(best, k) for k in CARRIED}
        if len(results) > 1 and f.verdict is Verdict.FLAKY and best.category:
            where = (f"classified on shard {label}, where it failed "
                     f"{best.bad}/{best.runs - best.skipped} runs")
            fields["evidence"] = (where, *best.evidence)
        return replace(f, **fields)
    if f.verdict is Verdict.FLAKY and classified:
        why = ("flaky only across shards: no shard saw it both pass and fail, so none "
               f"classified it; hunt it alone to: flakehunt run '{f.nodeid}'")
        return replace(f, category=Category.UNKNOWN, evidence=(why,))
    return f
