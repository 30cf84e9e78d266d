"""One run's folder -> a :class:`~flakehunt.model.RunResult`: the edge where what the
child wrote is read, once, into typed data.

A run leaves its JUnit XML (pytest's own), the plugin's event streams (one per
pytest process, see :mod:`flakehunt.events`) and its output log. The XML says
what each test did; the plugin's end record of the same execution adds the exact
test id, the failure chain and the evidence (:class:`flakehunt.wire.Evidence`).
When the XML is missing or unreadable the events alone give the results; a test
that started and never ended crashed the run (or hung in it).
"""

from __future__ import annotations

import shutil
import signal
import sys
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from flakehunt.collect import tail
from flakehunt.events import RunEvents, read_events
from flakehunt.junit import UnreadableXML, read_junit
from flakehunt.model import (
    NO_EVIDENCE,
    Failure,
    Outcome,
    Results,
    RunResult,
    RunSpec,
    RunStatus,
    TestResult,
)
from flakehunt.wire import MAIN_WORKER, EndRecord, Evidence, FailureRecord, StartRecord, evidence

#: folders a run leaves that nothing reads once it was parsed
SCRATCH = ("tmp", "tmpdir")


def read_run(spec: RunSpec, rundir: Path, exit_code: int | None, status: RunStatus,
             duration: float, known: tuple[str, ...]) -> RunResult:
    """A finished run -> its result, slimmed (see :func:`slim`); its scratch folders
    (the basetemp and TMPDIR) are removed once it was read."""
    run = parse_run(spec, rundir, exit_code, status, duration, known)
    run = replace(run, results=slim(run.results))
    for scratch in SCRATCH:
        shutil.rmtree(rundir / scratch, ignore_errors=True)
    return run


def parse_run(spec: RunSpec, rundir: Path, exit_code: int | None, status: RunStatus,
              duration: float, known: tuple[str, ...]) -> RunResult:
    """Everything one run left behind -> a RunResult. Nothing measured is dropped."""
    status = RunStatus(status)
    events = read_events(rundir)
    note = ""
    try:
        xml = read_junit(rundir / "junit.xml", known)
    except UnreadableXML as exc:
        xml, note = None, str(exc)
    if xml is not None:
        results = [enrich(r, events.ended.get((r.worker, r.position or -1))) for r in xml]
    else:
        results = [from_event(rec) for rec in events.ended.values()]
    log = rundir / "output.log"
    output = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    crashed_test = place_unfinished(results, events, spec, status, exit_code, output)
    if status is RunStatus.OK:
        status = ok_status(xml is not None, events, crashed_test, exit_code)
    if status in (RunStatus.CRASHED, RunStatus.TIMEOUT, RunStatus.ERROR):
        note = (crash_text(output, spec, crashed_test, lines=3) if crashed_test
                else tail(output, 5)) + killed_by(exit_code)
    applied = {w: s.get("perturb") or {} for w, s in events.sessions.items()}
    return RunResult(spec, status, exit_code, duration, tuple(results), str(rundir),
                     crashed_test, note, applied)


def place_unfinished(results: list[TestResult], events: RunEvents, spec: RunSpec,
                     status: RunStatus, exit_code: int | None, output: str) -> str | None:
    """Add (or place) the tests that started and never ended as crashed; the test that
    crashed the run, if one did."""
    present = {(r.worker, r.position) for r in results}
    crashed_test = next((r.nodeid for r in results if r.outcome is Outcome.CRASHED), None)
    for worker, rec in events.unfinished.items():
        if status is RunStatus.INTERRUPTED:
            continue  # stopped by the user, not by the test: no verdict on it
        crashed_test = rec["id"]
        if (worker, rec["pos"]) in present:
            continue
        # xdist reports a worker crash as a testcase without our properties: place it
        same = next((i for i, r in enumerate(results) if r.nodeid == rec["id"]
                     and r.outcome is Outcome.CRASHED and r.position is None), None)
        if same is not None:
            results[same] = replace(results[same], worker=worker, position=rec["pos"])
            continue
        results.append(crashed(rec, worker, status, exit_code, output, spec))
    return crashed_test


def crashed(rec: StartRecord, worker: str, status: RunStatus, exit_code: int | None,
            output: str, spec: RunSpec) -> TestResult:
    why = ("timed out" if status is RunStatus.TIMEOUT
           else f"the run died{killed_by(exit_code)}")
    return TestResult(rec["id"], Outcome.CRASHED, worker, rec["pos"],
                      failure=Failure(None, f"{why} while this test was running",
                                      crash_text(output, spec, rec["id"])))


def ok_status(has_xml: bool, events: RunEvents, crashed_test: str | None,
              exit_code: int | None) -> RunStatus:
    """What a run that ended on its own really was."""
    if not has_xml:
        return (RunStatus.CRASHED if events.unfinished or (exit_code or 0) < 0
                else RunStatus.UNREADABLE)
    if crashed_test is not None:
        return RunStatus.CRASHED  # an xdist worker died; pytest itself wrote the XML
    if exit_code not in (0, 1, 5):
        return RunStatus.ERROR
    return RunStatus.OK


#: what a passing test's record keeps: the state it left changed (polluter evidence)
KEPT_WHEN_PASSED = ("state",)


def slim(results: Iterable[TestResult]) -> Results:
    """Keep the full evidence of failures only: memory then grows with the failures,
    not with runs x tests (a passing test's fixture timeline is never read again; a
    plain result is kept compact, see :class:`~flakehunt.model.Results`). Test ids and
    workers are interned: every run's results share the same strings."""
    return Results(replace(r, nodeid=sys.intern(r.nodeid), worker=sys.intern(r.worker),
                           evidence=r.evidence if r.outcome.bad else kept(r.evidence))
                   for r in results)


def kept(full: Evidence) -> Evidence:
    if "state" not in full:
        return NO_EVIDENCE
    out = Evidence()
    out["state"] = full["state"]
    return out


def killed_by(exit_code: int | None) -> str:
    if exit_code is not None and exit_code < 0:
        try:
            return f" (killed by {signal.Signals(-exit_code).name})"
        except ValueError:
            return f" (killed by signal {-exit_code})"
    return ""


def crash_text(output: str, spec: RunSpec, nodeid: str | None, lines: int = 30) -> str:
    """What a crash left in the log: faulthandler's 'Fatal Python error' line and the
    frames of the crashing test's own file first, then the end of the log."""
    keep: list[str] = []
    test_file = (nodeid or "").split("::")[0]
    for line in output.splitlines():
        if line.startswith(("Fatal Python error", "Current thread", "Thread 0x")) or (
                test_file and test_file in line and line.lstrip().startswith("File")):
            keep.append(line)
    if keep:
        return "\n".join(keep[:lines])
    return tail(output, lines)


def failure_from_record(rec: EndRecord, fallback: Failure | None) -> Failure | None:
    fails: list[FailureRecord] = rec.get("failures") or []
    if not fails:
        return fallback
    main = next((f for f in fails if f.get("phase") == "call"), fails[0])
    chain = tuple(main.get("chain") or ())
    message = fallback.message if fallback else (
        f"{chain[0]['type']}: {chain[0]['message']}" if chain else "")
    return Failure(main.get("phase"), message, main.get("text") or "", chain)


def enrich(result: TestResult, rec: EndRecord | None) -> TestResult:
    """Add the plugin's record; its id is exact (the XML's has been escaped)."""
    if not rec:
        return result
    failure = failure_from_record(rec, result.failure) if result.outcome.bad else None
    return replace(result, nodeid=rec.get("id", result.nodeid), failure=failure,
                   evidence=evidence(rec))


def from_event(rec: EndRecord) -> TestResult:
    outcome = Outcome(rec.get("outcome", "passed"))
    failure = failure_from_record(rec, None) if outcome.bad else None
    return TestResult(rec["id"], outcome, rec.get("w", MAIN_WORKER), rec.get("pos"),
                      rec.get("dur", 0.0), failure, evidence(rec))
