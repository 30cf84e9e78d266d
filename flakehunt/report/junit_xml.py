"""JUnit XML (``--junit-out``) for GitLab, Jenkins and flaky-test services.

Valid against the Jenkins JUnit schema (``junit-10.xsd``, the one pytest's own
XML and junitparser's ``xunit2`` module follow). That schema allows properties
only on a ``<testsuite>``, so every test gets a suite of its own: its
properties (category, suspected fixture, polluter, failure rate, reproducer)
and one ``<testcase>``. A flaky test passed, with its failing sweep attempts as
``<flakyFailure>``/``<flakyError>`` (Maven Surefire's rerun convention); a test
that never passed has a ``<failure>``/``<error>`` and the other attempts as
``<rerunFailure>``/``<rerunError>``. Every string is XML-escaped by
ElementTree; characters XML 1.0 cannot hold (ANSI escapes, NUL) are written as
``\\xNN``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from flakehunt.model import (
    Finding,
    GateResult,
    HuntResult,
    Outcome,
    Purpose,
    RunResult,
    TestResult,
    Verdict,
)
from flakehunt.report import nodeid_parts

#: attempts written per test; the count of all of them is a property
MAX_ATTEMPTS = 25
INVALID_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def clean(text: object) -> str:
    return INVALID_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def classname(nodeid: str) -> str:
    """``tests/api/test_x.py::TestA::test_b`` -> ``tests.api.test_x.TestA``, as pytest writes it."""
    path, *rest = nodeid_parts(nodeid)
    return ".".join([path.removesuffix(".py").replace("/", "."), *rest[:-1]])


def case_name(nodeid: str) -> str:
    return nodeid_parts(nodeid)[-1]


def attempts(result: HuntResult) -> dict[str, list[tuple[RunResult, TestResult]]]:
    """Every failing sweep (or screen) attempt per test, in plan order."""
    out: dict[str, list[tuple[RunResult, TestResult]]] = {}
    for run in result.runs:
        if not run.spec.purpose.counts:
            continue
        for r in run.results:
            if r.outcome.bad:
                out.setdefault(r.nodeid, []).append((run, r))
    return out


def durations(result: HuntResult) -> dict[str, float]:
    """Mean duration of each test over the sweep runs it ran in."""
    total: dict[str, list[float]] = {}
    for run in result.runs:
        if run.spec.purpose is Purpose.SWEEP:
            for r in run.results:
                total.setdefault(r.nodeid, []).append(r.duration)
    return {k: sum(v) / len(v) for k, v in total.items()}


def properties(f: Finding, gate: GateResult | None) -> list[tuple[str, str]]:
    props = [("flakehunt.verdict", f.verdict.value),
             ("flakehunt.failure_rate", f"{f.failure_rate:.4f}"),
             ("flakehunt.failed_runs", f"{f.bad}/{f.runs - f.skipped}")]
    for name, value in (("category", f.category), ("suspected_fixture", f.suspected_fixture),
                        ("polluter", ", ".join(f.polluter)), ("reproduce", f.reproduce),
                        ("fix_hint", f.fix_hint), ("confidence", f.confidence),
                        ("problem", f.problem)):
        if value:
            props.append((f"flakehunt.{name}", value))
    for dim, values in f.breakdown.items():
        if any(bad for bad, _ in values.values()):
            props.append((f"flakehunt.failed_by_{dim}",
                          ", ".join(f"{v} {bad}/{runs}" for v, (bad, runs) in values.items())))
    props += [("flakehunt.evidence", e) for e in f.evidence]
    if gate is None:
        return props
    for q in gate.quarantines(f.nodeid):
        props.append(("flakehunt.quarantined",
                      f"{q.owner} until {q.expires.isoformat()}: {q.reason}"))
    if f.nodeid in gate.new:
        props.append(("flakehunt.gate", "new"))
    return props


def conditions(run: RunResult) -> str:
    s = run.spec
    return (f"flakehunt sweep run {s.plan_index if s.plan_index is not None else s.index}: "
            f"order {s.order}, random seed {s.random_seed}, workers {s.workers}, "
            f"profile {s.profile}")


def attempt_element(parent: ET.Element, tag: str, run: RunResult, r: TestResult) -> None:
    failure = r.failure
    message = failure.message if failure else r.outcome.value
    kind = (failure.chain[0].get("type") if failure and failure.chain else None) or (
        "crashed" if r.outcome is Outcome.CRASHED else r.outcome.value)
    el = ET.SubElement(parent, tag, message=clean(message.strip().split("\n")[0][:500]),
                       type=clean(kind))
    trace = (failure.text or failure.message) if failure else ""
    if tag in ("failure", "error"):
        el.text = clean(f"{trace}\n\n{conditions(run)}")
    else:
        ET.SubElement(el, "stackTrace").text = clean(trace)
        ET.SubElement(el, "system-out").text = clean(conditions(run))


def test_case(suite: ET.Element, f: Finding, tried: list[tuple[RunResult, TestResult]],
              time: float) -> dict[str, int]:
    case = ET.SubElement(suite, "testcase", name=clean(case_name(f.nodeid)),
                         classname=clean(classname(f.nodeid)), time=f"{time:.3f}")
    counts = {"failures": 0, "errors": 0, "skipped": 0}
    if f.verdict in (Verdict.SKIPPED, Verdict.NOT_RUN):
        why = "skipped in every run" if f.verdict is Verdict.SKIPPED else "never ran"
        ET.SubElement(case, "skipped", message=why)
        counts["skipped"] = 1
    elif f.verdict is Verdict.FLAKY:
        for run, r in tried[:MAX_ATTEMPTS]:
            tag = "flakyFailure" if r.outcome is Outcome.FAILED else "flakyError"
            attempt_element(case, tag, run, r)
        if not tried:  # a report saved without per-run results
            el = ET.SubElement(case, "flakyFailure", type="flaky",
                               message=clean(f.messages[0] if f.messages else "flaky"))
            ET.SubElement(el, "stackTrace").text = f"failed {f.bad} of {f.runs} runs"
    elif f.verdict is Verdict.FAILING:
        first_error = bool(tried) and tried[0][1].outcome is not Outcome.FAILED
        if tried:
            attempt_element(case, "error" if first_error else "failure", *tried[0])
        else:
            ET.SubElement(case, "failure", type="failing",
                          message=clean(f.messages[0] if f.messages else "failing"))
        for run, r in tried[1:MAX_ATTEMPTS]:
            tag = "rerunFailure" if r.outcome is Outcome.FAILED else "rerunError"
            attempt_element(case, tag, run, r)
        counts["errors" if first_error else "failures"] = 1
    return counts


class JUnitReporter:
    def render(self, result: HuntResult) -> str:
        root = ET.Element("testsuites", name="flakehunt")
        tried, times = attempts(result), durations(result)
        totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for f in result.findings:
            suite = ET.SubElement(root, "testsuite", name=clean(f.nodeid), tests="1")
            props = properties(f, result.gate)
            if len(tried.get(f.nodeid, ())) > MAX_ATTEMPTS:
                props.append(("flakehunt.attempts_shown", f"{MAX_ATTEMPTS} of {f.bad}"))
            el = ET.SubElement(suite, "properties")
            for name, value in props:
                ET.SubElement(el, "property", name=name, value=clean(value))
            time = times.get(f.nodeid, 0.0)
            counts = test_case(suite, f, tried.get(f.nodeid, []), time)
            suite.set("time", f"{time:.3f}")
            for key, n in counts.items():
                suite.set(key, str(n))
                totals[key] += n
            totals["tests"] += 1
        for key in ("tests", "failures", "errors"):
            root.set(key, str(totals[key]))
        root.set("time", f"{sum(times.values()):.3f}")
        ET.indent(root)
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(
            root, encoding="unicode") + "\n"
