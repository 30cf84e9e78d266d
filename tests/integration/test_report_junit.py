"""``--junit-out``: valid against the Jenkins JUnit schema, round-trips through junitparser.

The schema is ``junit-10.xsd``, the one pytest validates its own XML against;
it is taken from pytest's source distribution (fetched once with pip into a
cache folder: it is not copied into this repository). Without pip access to
it the schema test skips; everything else runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import samples
from junitparser.xunit2 import FlakyError, FlakyFailure, JUnitXml, RerunFailure

from flakehunt.model import Verdict
from flakehunt.report.junit_xml import MAX_ATTEMPTS, JUnitReporter, classname

XSD = "testing/example_scripts/junit-10.xsd"


def schema_path() -> Path | None:
    if os.environ.get("FLAKEHUNT_JUNIT_XSD"):
        return Path(os.environ["FLAKEHUNT_JUNIT_XSD"])
    version = pytest.__version__
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "flakehunt-tests"
    target = cache / f"junit-10-pytest-{version}.xsd"
    if target.exists():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        try:
            subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                            "--no-binary", ":all:", f"pytest=={version}", "-d", tmp],
                           check=True, capture_output=True, timeout=300)
            [sdist] = Path(tmp).glob("pytest-*.tar.gz")
            with tarfile.open(sdist) as tar:
                member = tar.extractfile(f"pytest-{version}/{XSD}")
                data = member.read() if member else b""
        except (OSError, subprocess.SubprocessError, ValueError, KeyError):
            return None
    cache.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


@pytest.fixture(scope="module")
def junit_schema():
    xmlschema = pytest.importorskip("xmlschema")
    path = schema_path()
    if path is None:
        pytest.skip("junit-10.xsd unavailable: pip could not fetch pytest's sdist "
                    "(set FLAKEHUNT_JUNIT_XSD to a copy)")
    return xmlschema.XMLSchema(str(path))


@pytest.fixture
def xml_file(tmp_path) -> Path:
    path = tmp_path / "junit.xml"
    path.write_text(JUnitReporter().render(samples.result()), encoding="utf-8")
    return path


def test_validates_against_the_jenkins_junit_schema(junit_schema, xml_file):
    junit_schema.validate(str(xml_file))  # raises with the offending element if invalid


def test_one_testcase_per_test_with_properties(xml_file):
    root = ET.parse(xml_file).getroot()
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == list(samples.NODEIDS)
    assert all(len(s.findall("testcase")) == 1 for s in suites)
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("5", "1", "0")
    race = next(s for s in suites if s.get("name") == samples.RACE)
    props = {p.get("name"): p.get("value") for p in race.iter("property")}
    assert props["flakehunt.verdict"] == "flaky"
    assert props["flakehunt.category"] == "race"
    assert props["flakehunt.suspected_fixture"] == "websocket"
    assert props["flakehunt.failure_rate"] == "0.2500"
    assert props["flakehunt.failed_runs"] == "1/4"
    assert props["flakehunt.reproduce"].startswith("python -m pytest")
    assert props["flakehunt.failed_by_profile"] == "none 1/2, single-core 0/2"
    case = race.find("testcase")
    assert (case.get("name"), case.get("classname")) == ("test_race", "tests.test_a.TestA")
    [attempt] = case.findall("flakyError")  # an error in setup, not an assertion
    assert attempt.get("type") == "RuntimeError"
    assert "Event loop is closed" in attempt.find("stackTrace").text
    assert "sweep run 2: order hash:11" in attempt.find("system-out").text


def test_junitparser_round_trip(xml_file, tmp_path):
    xml = JUnitXml.fromfile(str(xml_file))
    cases = {case.name: (suite, case) for suite in xml for case in suite}
    suite, evil = cases["test_inject[::error::owned%0A::warning::x<script>alert(1)</script>"
                        "|**b**]"]
    flaky = evil.flaky_failures()
    assert len(flaky) == 2 and all(isinstance(f, FlakyFailure) for f in flaky)
    assert flaky[0].message == samples.HOSTILE_MESSAGE.split("\n")[0]
    assert evil.is_passed and evil.is_flaky  # passed, with flaky attempts
    props = {p.name: p.value for p in suite.properties()}
    assert props["flakehunt.polluter"] == "tests/test_a.py::test_ok"
    assert props["flakehunt.suspected_fixture"] == "db<b>"
    _, broken = cases["test_broken"]
    assert broken.is_failure and not broken.is_passed
    assert len(broken.rerun_failures()) == 3
    assert all(isinstance(r, RerunFailure) for r in broken.rerun_failures())
    _, race = cases["test_race"]
    assert isinstance(race.flaky_errors()[0], FlakyError)
    _, skipped = cases["test_skip"]
    assert skipped.is_skipped
    # written back by junitparser and read again: the same document
    again = tmp_path / "again.xml"
    xml.write(str(again))
    reread = JUnitXml.fromfile(str(again))
    assert [(c.name, c.classname, len(c.result)) for s in reread for c in s] == [
        (c.name, c.classname, len(c.result)) for s in xml for c in s]


def test_control_characters_are_made_visible_not_written(xml_file):
    text = xml_file.read_text(encoding="utf-8")
    assert "\x1b" not in text and "\x00" not in text
    assert "\\x1b[31m" in text and "\\x00" in text
    ET.parse(xml_file)  # still well-formed


def test_attempts_are_capped_and_counted():
    result = samples.result(runs=2 * MAX_ATTEMPTS + 10)
    root = ET.fromstring(JUnitReporter().render(result))
    suite = next(s for s in root if s.get("name") == samples.BROKEN)
    case = suite.find("testcase")
    assert len(case.findall("failure")) == 1
    assert len(case.findall("rerunFailure")) == MAX_ATTEMPTS - 1
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["flakehunt.attempts_shown"] == f"{MAX_ATTEMPTS} of {2 * MAX_ATTEMPTS + 10}"


def test_report_without_per_run_results_still_marks_flaky():
    from dataclasses import replace

    result = replace(samples.result(), runs=())
    root = ET.fromstring(JUnitReporter().render(result))
    race = next(s for s in root if s.get("name") == samples.RACE).find("testcase")
    [attempt] = race.findall("flakyFailure")
    assert attempt.find("stackTrace").text == "failed 1 of 4 runs"
    assert [f.verdict for f in result.findings][:2] == [Verdict.FLAKY, Verdict.FLAKY]


def test_classname_follows_pytest():
    assert classname("tests/api/test_x.py::TestA::test_b[1]") == "tests.api.test_x.TestA"
    assert classname("test_x.py::test_b") == "test_x"
