"""The machine report (``--json``). Schema 1: add fields freely, never rename."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from flakehunt.model import (
    Cluster,
    Finding,
    Fix,
    GateResult,
    HuntResult,
    KnownFlake,
    RunResult,
    TestResult,
    Verdict,
)

SCHEMA = 1
#: a failure's full text is cut to this many characters in ``runs[].results``
TEXT_LIMIT = 2000


def run_dict(run: RunResult) -> dict[str, Any]:
    spec = asdict(run.spec)
    spec["tests"] = list(run.spec.tests) if run.spec.tests is not None else None
    counts: dict[str, int] = {}
    for r in run.results:
        counts[r.outcome.value] = counts.get(r.outcome.value, 0) + 1
    return {**spec, "status": run.status, "exit_code": run.exit_code,
            "duration": round(run.duration, 3), "outcomes": counts,
            "crashed_test": run.crashed_test, "note": run.note,
            "profile_applied": run.profile_applied,
            "ended": None if run.ended is None else round(run.ended, 3),
            "results": [result_dict(r) for r in run.results]}


def result_dict(r: TestResult) -> dict[str, Any]:
    """One test's outcome in one run: what `flakehunt merge` recomputes verdicts from."""
    out: dict[str, object] = {"nodeid": r.nodeid, "outcome": r.outcome.value, "worker": r.worker,
           "position": r.position, "duration": round(r.duration, 3)}
    if r.failure is not None:
        chain = r.failure.chain
        out["failure"] = {"phase": r.failure.phase, "message": r.failure.message,
                          "type": chain[0].get("type") if chain else None,
                          "text": r.failure.text[:TEXT_LIMIT]}
    return out


def test_dict(f: Finding) -> dict[str, Any]:
    return {
        "nodeid": f.nodeid, "verdict": f.verdict.value, "runs": f.runs, "passed": f.passed,
        "failed": f.failed, "errored": f.errored, "skipped": f.skipped, "crashed": f.crashed,
        "failure_rate": round(f.failure_rate, 4),
        "category": f.category, "suspected_fixture": f.suspected_fixture,
        "polluter": list(f.polluter) or None, "evidence": list(f.evidence),
        "reproduce": f.reproduce, "fix_hint": f.fix_hint, "confidence": f.confidence,
        "breakdown": {dim: {v: {"bad": c[0], "runs": c[1]} for v, c in vals.items()}
                      for dim, vals in f.breakdown.items()},
        "messages": list(f.messages), "problem": f.problem,
        "culprit": asdict(f.culprit) if f.culprit is not None else None,
        "fix": fix_dict(f.fix or NOT_TRIED) if f.verdict is Verdict.FLAKY else None,
        "followups": dict(f.followups), "followup_runs": sum(f.followups.values()),
    }


#: a flaky test's fix when no patch was attempted
NOT_TRIED = Fix("none", "no patch attempted: `flakehunt run --patch-dir DIR` makes and "
                "verifies them")


def fix_dict(fix: Fix, diff: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"patch": fix.patch, "status": fix.status, "evidence": fix.evidence}
    if diff:
        out["diff"] = fix.diff
    return out


def cluster_dict(c: Cluster) -> dict[str, Any]:
    fix = c.fix if c.fix.status != "none" or c.fix.evidence else NOT_TRIED
    return {"cause": c.cause, "category": c.category.value, "tests": list(c.tests),
            "polluter": list(c.polluter), "slug": c.slug,
            "culprit": asdict(c.culprit) if c.culprit is not None else None,
            "fix": fix_dict(fix, diff=True)}


def gate_dict(gate: GateResult) -> dict[str, Any]:
    return {"fail_on": gate.fail_on, "failed": gate.failed, "blocking": dict(gate.blocking),
            "new": list(gate.new), "quarantined": [quarantine_dict(k) for k in gate.quarantined],
            "stale": list(gate.stale), "message": gate.message()}


def quarantine_dict(k: KnownFlake) -> dict[str, Any]:
    return {"test": k.test, "owner": k.owner, "reason": k.reason,
            "expires": k.expires.isoformat(), "max_failure_rate": k.max_failure_rate,
            "nodeid": k.test}


def to_dict(result: HuntResult, runs: bool = True) -> dict[str, Any]:
    """The report as data; ``runs=False``: with an empty list of runs."""
    return {
        "schema": SCHEMA,
        "rootdir": result.rootdir,
        "seed": result.seed,
        "settings": result.settings,
        "interrupted": result.interrupted,
        "warnings": list(result.warnings),
        "runs": [run_dict(r) for r in result.runs] if runs else [],
        "clusters": [cluster_dict(c) for c in result.clusters],
        "tests": [test_dict(f) for f in result.findings],
        "gate": gate_dict(result.gate) if result.gate is not None else None,
        "timing": result.timing or None,
    }


class JsonReporter:
    def render(self, result: HuntResult) -> str:
        return "".join(self.chunks(result))

    def chunks(self, result: HuntResult) -> Iterator[str]:
        """The report's text in pieces, one run at a time: the same text as
        ``json.dumps(to_dict(result), indent=2)``, without ever holding every run's
        results (runs x tests of them) as dicts or text at once."""
        top = to_dict(result, runs=False)  # the runs' place, filled in below
        head, mark, tail = json.dumps(top, indent=2).partition(RUNS_PLACE)
        if not mark or not result.runs:
            yield json.dumps(to_dict(result), indent=2) + "\n"
            return
        yield head + '\n  "runs": [\n'
        for i, run in enumerate(result.runs):
            text = json.dumps(run_dict(run), indent=2)
            yield ("" if i == 0 else ",\n") + "\n".join("    " + line
                                                        for line in text.split("\n"))
        yield "\n  ]" + tail + "\n"


#: the runs' line in the report without them: a key of the top level, the only line
#: indented by two spaces that says so (a JSON string holds no raw newline)
RUNS_PLACE = '\n  "runs": []'
