"""A saved ``--json`` report back into a :class:`HuntResult`, for `report` and `merge`.

Schema 1 only ever gains fields, so every field added after the first release
is read with a default: an older report loads, with less in it (no per-run
results, for instance, and so nothing for `merge` to recompute from).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from flakehunt.errors import UsageError
from flakehunt.model import (
    Category,
    Cluster,
    Culprit,
    Failure,
    Finding,
    Fix,
    GateResult,
    HuntResult,
    KnownFlake,
    Outcome,
    Purpose,
    RunResult,
    RunSpec,
    RunStatus,
    TestResult,
    Verdict,
)
from flakehunt.report.json import NOT_TRIED, SCHEMA
from flakehunt.wire import ChainLink


class ResultFileError(UsageError):
    """A result file that is missing, not JSON, or not a flakehunt report."""


def load(path: str | Path) -> HuntResult:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ResultFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultFileError(f"{path} is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or "tests" not in data:
        raise ResultFileError(f"{path} is not a flakehunt --json report (schema {SCHEMA})")
    try:
        return from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ResultFileError(f"{path}: malformed report ({type(exc).__name__}: {exc})") from None


def from_dict(data: dict[str, Any]) -> HuntResult:
    settings = data.get("settings") or {}
    return HuntResult(
        rootdir=data["rootdir"],
        selection=tuple(settings.get("selection") or ()),
        seed=data["seed"],
        runs=tuple(run_from(r) for r in data.get("runs") or ()),
        findings=tuple(finding_from(t) for t in data["tests"]),
        settings=settings,
        warnings=tuple(data.get("warnings") or ()),
        interrupted=data.get("interrupted") or 0,
        gate=gate_from(data["gate"]) if data.get("gate") else None,
        clusters=tuple(cluster_from(c) for c in data.get("clusters") or ()),
    )


def fix_from(x: dict[str, Any] | None) -> Fix | None:
    """A saved fix; None where none was attempted (as before it was saved)."""
    if not x or (x.get("status") == NOT_TRIED.status and x.get("evidence") == NOT_TRIED.evidence):
        return None
    return Fix(x.get("status", "none"), x.get("evidence", ""), x.get("patch"), x.get("diff"))


def cluster_from(c: dict[str, Any]) -> Cluster:
    return Cluster(Category(c["category"]), c["cause"], tuple(c["tests"]),
                   Culprit(**c["culprit"]) if c.get("culprit") else None,
                   tuple(c.get("polluter") or ()), c.get("slug", ""),
                   fix_from(c.get("fix")) or Fix())


def gate_from(g: dict[str, Any]) -> GateResult:
    """The gate as saved (``failed``, ``new`` and ``message`` follow from the rest)."""
    return GateResult(
        fail_on=g["fail_on"], blocking=dict(g.get("blocking") or {}),
        quarantined=tuple(KnownFlake(q["test"], q["owner"], q["reason"],
                                     dt.date.fromisoformat(q["expires"]),
                                     q.get("max_failure_rate"))
                          for q in g.get("quarantined") or ()),
        stale=tuple(g.get("stale") or ()))


SPEC_FIELDS = ("index", "order", "random_seed", "workers", "dist", "profile", "purpose",
               "count", "split", "reset", "plan_index", "hash_seed")


def run_from(r: dict[str, Any]) -> RunResult:
    fields = {k: r[k] for k in SPEC_FIELDS if k in r}
    if "purpose" in fields:
        fields["purpose"] = Purpose(fields["purpose"])
    spec = RunSpec(**fields, tests=tuple(r["tests"]) if r.get("tests") is not None else None)
    return RunResult(spec, RunStatus(r["status"]), r.get("exit_code"), r.get("duration", 0.0),
                     tuple(result_from(t) for t in r.get("results") or ()), "",
                     r.get("crashed_test"), r.get("note", ""), r.get("profile_applied") or {},
                     r.get("ended"))


def result_from(t: dict[str, Any]) -> TestResult:
    failure = None
    if f := t.get("failure"):
        # the report keeps only the outermost exception's type
        chain = (ChainLink(type=f["type"], module="", message=""),) if f.get("type") else ()
        failure = Failure(f.get("phase"), f.get("message", ""), f.get("text", ""), chain)
    return TestResult(t["nodeid"], Outcome(t["outcome"]), t.get("worker", "main"),
                      t.get("position"), t.get("duration", 0.0), failure)


def finding_from(t: dict[str, Any]) -> Finding:
    return Finding(
        nodeid=t["nodeid"], verdict=Verdict(t["verdict"]), runs=t["runs"], passed=t["passed"],
        failed=t["failed"], errored=t["errored"], skipped=t["skipped"],
        crashed=t.get("crashed", 0),
        breakdown={dim: {v: (c["bad"], c["runs"]) for v, c in vals.items()}
                   for dim, vals in (t.get("breakdown") or {}).items()},
        followups={str(k): int(v) for k, v in (t.get("followups") or {}).items()},
        category=Category(t["category"]) if t.get("category") else None,
        suspected_fixture=t.get("suspected_fixture"),
        polluter=tuple(t.get("polluter") or ()), evidence=tuple(t.get("evidence") or ()),
        reproduce=t.get("reproduce"), fix_hint=t.get("fix_hint"),
        confidence=t.get("confidence"), messages=tuple(t.get("messages") or ()),
        problem=t.get("problem"),
        culprit=Culprit(**t["culprit"]) if t.get("culprit") else None,
        fix=fix_from(t.get("fix")),
    )
