"""JUnit XML -> test results. The only module that imports junitparser.

Tests are identified by the ``flakehunt_nodeid`` property the child plugin
writes, not by XML names (xdist reorders, pytest-repeat rewrites ids). The two
``<testcase>`` pytest writes for a call failure plus a teardown error are
merged into one result. Files pytest never writes (a DOCTYPE or entity
declaration, over the size cap) are refused unread: no entity is expanded.
"""

from __future__ import annotations

import os
from pathlib import Path

from flakehunt.model import Failure, Outcome, TestResult
from flakehunt.wire import PROP_NODEID, PROP_POSITION, PROP_WORKER

MAX_BYTES = 256 * 1024 * 1024
SEVERITY = {Outcome.PASSED: 0, Outcome.SKIPPED: 1, Outcome.ERROR: 2, Outcome.FAILED: 3,
            Outcome.CRASHED: 4}


class UnreadableXML(Exception):
    """The file is missing, empty, truncated, hostile or not JUnit XML."""


def junit_address(nodeid: str) -> tuple[str, str]:
    """(classname, name) as pytest's junitxml writes them for ``nodeid``
    (``::`` inside the ``[params]`` part does not split)."""
    head, bracket, params = nodeid.partition("[")
    parts = head.split("::")
    path = parts[0]
    if path.endswith(".py"):
        path = path[:-3]
    names = [path.replace("/", ".")] + parts[1:]
    return ".".join(names[:-1]), names[-1] + bracket + params


def read_junit(path: Path, known: list[str] | tuple[str, ...] = ()) -> list[TestResult]:
    """Parse one run's XML into one result per test execution, in file order."""
    from junitparser import JUnitXml

    check_safe(path)
    try:
        xml = JUnitXml.fromfile(str(path), parse_func=parse_without_doctype)
    except UnreadableXML as exc:
        raise UnreadableXML(f"{path.name}: {exc}") from None
    except (Exception, RecursionError) as exc:  # junitparser/ElementTree raise many kinds
        raise UnreadableXML(f"{path.name}: {type(exc).__name__}: {exc}") from None
    try:
        return cases(xml, path, known)
    except (ValueError, TypeError, AttributeError, RecursionError) as exc:
        raise UnreadableXML(f"{path.name}: {type(exc).__name__}: {exc}") from None


def parse_without_doctype(source):
    """Parse only after expat, streaming the whole file, saw no DOCTYPE (so no entity)
    anywhere; in any encoding the file declares."""
    import xml.etree.ElementTree as ET
    from xml.parsers import expat

    def refuse(*_args):
        raise UnreadableXML("has a DOCTYPE/ENTITY declaration; refused")

    scanner = expat.ParserCreate()
    scanner.StartDoctypeDeclHandler = refuse
    scanner.EntityDeclHandler = refuse
    with open(source, "rb") as fh:
        scanner.ParseFile(fh)
    return ET.parse(source)


def cases(xml, path: Path, known) -> list[TestResult]:
    from junitparser.junitparser import Error, Properties, Skipped
    from junitparser.junitparser import Failure as JFailure

    by_address = {junit_address(n): n for n in known}
    suites = [xml] if xml._tag == "testsuite" else list(xml)
    results: dict[tuple, TestResult] = {}
    for suite in suites:
        for case in suite:
            found = case.child(Properties)
            props = {p.name: p.value for p in found} if found is not None else {}
            nodeid = props.get(PROP_NODEID) or by_address.get((case.classname, case.name))
            if nodeid is None:
                continue
            outcome, failure = Outcome.PASSED, None
            for res in case.result:
                phase: str | None
                text = (res.text or "").strip()
                message = res.message or ""
                if isinstance(res, JFailure):
                    new, phase = Outcome.FAILED, "call"
                elif isinstance(res, Error):
                    new, phase = Outcome.ERROR, error_phase(message)
                    if "crashed while running" in message:
                        new, phase = Outcome.CRASHED, None
                elif isinstance(res, Skipped):
                    new, phase = Outcome.SKIPPED, None
                else:
                    continue
                if SEVERITY[new] > SEVERITY[outcome]:
                    outcome = new
                    failure = Failure(phase, message, text) if new.bad else None
            position = props.get(PROP_POSITION)
            result = TestResult(
                nodeid=nodeid,
                outcome=outcome,
                worker=props.get(PROP_WORKER, "main"),
                position=int(position) if position and position.isdigit() else None,
                duration=float(case.time or 0.0),
                failure=failure,
            )
            # one execution = one (worker, position); without them, one test id
            key = (result.worker, result.position) if result.position else (nodeid,)
            results[key] = merge(results.get(key), result)
    return list(results.values())


def error_phase(message: str) -> str | None:
    for phase in ("setup", "teardown"):
        if message.startswith(f"failed on {phase}"):
            return phase
    return None


def merge(old: TestResult | None, new: TestResult) -> TestResult:
    """Two testcases for one test (call failure + teardown error): keep the worse."""
    if old is None:
        return new
    worse, other = (new, old) if SEVERITY[new.outcome] > SEVERITY[old.outcome] else (old, new)
    return TestResult(
        nodeid=worse.nodeid,
        outcome=worse.outcome,
        worker=worse.worker,
        position=worse.position if worse.position is not None else other.position,
        duration=max(old.duration, new.duration),
        failure=worse.failure or other.failure,
    )


def check_safe(path: Path) -> None:
    try:
        size = os.path.getsize(path)
    except OSError:
        raise UnreadableXML(f"{path.name}: missing") from None
    if size == 0:
        raise UnreadableXML(f"{path.name}: empty")
    if size > MAX_BYTES:
        raise UnreadableXML(f"{path.name}: {size} bytes, over the {MAX_BYTES} byte cap")

