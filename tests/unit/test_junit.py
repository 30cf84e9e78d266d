"""junit.read_junit on XML captured from real pytest runs (tests/data/junit, made by
tests/data/generate.py) and on hostile or broken files."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from helpers import DATA

from flakehunt.junit import UnreadableXML, junit_address, read_junit
from flakehunt.model import Outcome

JUNIT = DATA / "junit"


def by_id(results):
    out = {}
    for r in results:
        assert r.nodeid not in out, f"{r.nodeid} appears twice"
        out[r.nodeid] = r
    return out


# -- captured runs --------------------------------------------------------------
def test_phases_one_result_per_test():
    results = read_junit(JUNIT / "phases.xml")
    assert [r.nodeid for r in results] == [
        "test_phases.py::test_pass",
        "test_phases.py::test_call_and_teardown",
        "test_phases.py::test_setup_error",
        "test_phases.py::test_skip",
        "test_phases.py::test_xfail",
        "test_phases.py::test_p[a[b]]",
    ]
    assert [r.position for r in results] == [1, 2, 3, 4, 5, 6]
    assert {r.worker for r in results} == {"main"}


def test_call_failure_and_teardown_error_merge_into_one_failed_result():
    raw = (JUNIT / "phases.xml").read_text()
    assert raw.count('name="test_call_and_teardown"') == 2  # pytest wrote two testcases
    r = by_id(read_junit(JUNIT / "phases.xml"))["test_phases.py::test_call_and_teardown"]
    assert r.outcome is Outcome.FAILED
    assert r.failure is not None
    assert r.failure.phase == "call"
    assert "call boom" in r.failure.message
    assert r.position == 2


def test_setup_error():
    r = by_id(read_junit(JUNIT / "phases.xml"))["test_phases.py::test_setup_error"]
    assert r.outcome is Outcome.ERROR
    assert r.failure.phase == "setup"
    assert "setup boom" in r.failure.message
    assert "RuntimeError" in r.failure.text


def test_skip_and_xfail_are_skipped_and_pass_is_passed():
    results = by_id(read_junit(JUNIT / "phases.xml"))
    assert results["test_phases.py::test_skip"].outcome is Outcome.SKIPPED
    assert results["test_phases.py::test_xfail"].outcome is Outcome.SKIPPED
    assert results["test_phases.py::test_skip"].failure is None
    assert results["test_phases.py::test_pass"].outcome is Outcome.PASSED
    assert results["test_phases.py::test_pass"].failure is None


def test_brackets_in_param_ids_are_kept_verbatim():
    results = by_id(read_junit(JUNIT / "phases.xml"))
    assert results["test_phases.py::test_p[a[b]]"].outcome is Outcome.PASSED


def test_xdist_results_identified_by_worker_and_position():
    results = read_junit(JUNIT / "xdist.xml")
    assert len(results) == 5
    assert {r.worker for r in results} == {"gw0", "gw1"}
    assert sorted(r.nodeid for r in results) == sorted(
        [f"test_xdist.py::test_a[{i}]" for i in range(4)] + ["test_xdist.py::test_b"])
    for worker in ("gw0", "gw1"):
        positions = sorted(r.position for r in results if r.worker == worker)
        assert positions == list(range(1, len(positions) + 1))
    assert all(r.outcome is Outcome.PASSED for r in results)


def test_repeat_count_gives_one_result_per_execution_with_the_base_id():
    results = read_junit(JUNIT / "repeat.xml")
    counts = Counter(r.nodeid for r in results)
    assert counts == {"test_repeat.py::test_r": 3, "test_repeat.py::test_rp[u]": 3,
                      "test_repeat.py::test_rp[v]": 3}
    assert sorted(r.position for r in results) == list(range(1, 10))


def test_testcases_without_properties_map_back_through_known_ids():
    known = ["sub/test_noprops.py::TestK::test_m", "sub/test_noprops.py::TestK::test_fail",
             "sub/test_noprops.py::test_bracket[a[b]]"]
    results = by_id(read_junit(JUNIT / "noprops.xml", known))
    assert set(results) == set(known)
    assert results["sub/test_noprops.py::TestK::test_m"].outcome is Outcome.PASSED
    assert results["sub/test_noprops.py::test_bracket[a[b]]"].outcome is Outcome.PASSED
    fail = results["sub/test_noprops.py::TestK::test_fail"]
    # the call failure and teardown error (no properties: merged by id) give one result
    assert fail.outcome is Outcome.FAILED and fail.failure.phase == "call"
    assert all(r.worker == "main" and r.position is None for r in results.values())


def test_testcases_without_properties_or_known_id_are_dropped():
    assert read_junit(JUNIT / "noprops.xml") == []


def test_known_ids_with_double_colon_in_params_map_back():
    nodeid = "sub/test_noprops.py::test_colon[x::y]"
    assert junit_address(nodeid) == ("sub.test_noprops", "test_colon[x::y]")
    assert [r.nodeid for r in read_junit(JUNIT / "noprops.xml", [nodeid])] == [nodeid]


@pytest.mark.parametrize("nodeid, address", [
    ("test_a.py::test_x", ("test_a", "test_x")),
    ("tests/sub/test_a.py::TestC::test_x", ("tests.sub.test_a.TestC", "test_x")),
    ("tests/test_a.py::TestC::Inner::test_x[1-2]", ("tests.test_a.TestC.Inner", "test_x[1-2]")),
    ("tests/test_a.py::test_x[a[b]]", ("tests.test_a", "test_x[a[b]]")),
    ("tests/test_a.py::test_x[a.b/c]", ("tests.test_a", "test_x[a.b/c]")),
])
def test_junit_address_matches_pytest(nodeid, address):
    assert junit_address(nodeid) == address


# -- broken and hostile files ---------------------------------------------------
LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
              for i in range(1, 10))
    + ']>\n<testsuites><testsuite name="x"><testcase classname="a" name="b"><properties>'
    '<property name="flakehunt_nodeid" value="&lol9;"/></properties></testcase>'
    "</testsuite></testsuites>\n"
)

ENTITY = (
    '<?xml version="1.0"?>\n<!DOCTYPE testsuites [<!ENTITY x "injected">]>\n'
    '<testsuites><testsuite name="x"><testcase classname="a" name="b"><properties>'
    '<property name="flakehunt_nodeid" value="&x;"/></properties></testcase>'
    "</testsuite></testsuites>\n"
)


def truncated() -> bytes:
    whole = (JUNIT / "phases.xml").read_bytes()
    return whole[: len(whole) // 2]


@pytest.mark.parametrize("name, content", [
    ("empty", b""),
    ("truncated", truncated()),
    ("garbage", b"this is not xml at all \x00\xff\xfe"),
    ("binary", bytes(range(256)) * 4),
    ("html", b"<html><body>502 Bad Gateway</body></html>"),
    ("billion-laughs", LAUGHS.encode()),
    ("entity", ENTITY.encode()),
])
def test_unreadable_files_raise(tmp_path, name, content):
    path = tmp_path / "junit.xml"
    path.write_bytes(content)
    with pytest.raises(UnreadableXML) as exc:
        read_junit(path, ["a.py::b"])
    assert "junit.xml" in str(exc.value)


def test_doctype_is_refused_before_parsing(tmp_path, monkeypatch):
    """The DOCTYPE check happens unread: the XML parser is never called."""
    import junitparser

    def explode(*args, **kwargs):
        raise AssertionError("the parser was called on a DOCTYPE file")

    monkeypatch.setattr(junitparser.JUnitXml, "fromfile", explode)
    path = tmp_path / "junit.xml"
    path.write_text(LAUGHS)
    with pytest.raises(UnreadableXML, match="DOCTYPE"):
        read_junit(path)


def test_missing_file_raises(tmp_path):
    with pytest.raises(UnreadableXML, match="missing"):
        read_junit(tmp_path / "nope.xml")


def test_entity_in_utf16_file_is_refused(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_bytes(ENTITY.replace('version="1.0"', 'version="1.0" encoding="UTF-16"')
                     .encode("utf-16"))
    with pytest.raises(UnreadableXML):
        read_junit(path)


def test_entity_after_long_prolog_is_refused(tmp_path):
    path = tmp_path / "junit.xml"
    head, rest = ENTITY.split("\n", 1)
    path.write_text(f"{head}\n<!--{'x' * 70_000}-->\n{rest}")
    with pytest.raises(UnreadableXML):
        read_junit(path)


def test_bad_time_attribute_is_unreadable_not_a_crash(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text('<testsuites><testsuite name="x"><testcase classname="a" name="b" time="abc">'
                    '<properties><property name="flakehunt_nodeid" value="a.py::b"/>'
                    "</properties></testcase></testsuite></testsuites>")
    with pytest.raises(UnreadableXML):
        read_junit(path)


def test_single_testsuite_root_and_crash_message(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text(
        '<testsuite name="x"><testcase classname="a" name="b">'
        "<error message=\"failed on setup with &quot;worker 'gw0' crashed while running "
        "'a.py::b'&quot;\">worker 'gw0' crashed</error></testcase>"
        '<testcase classname="a" name="c"><properties>'
        '<property name="flakehunt_nodeid" value="a.py::c"/>'
        '<property name="flakehunt_worker" value="gw1"/>'
        '<property name="flakehunt_position" value="notanumber"/>'
        "</properties></testcase></testsuite>")
    results = by_id(read_junit(path, ["a.py::b"]))
    assert results["a.py::b"].outcome is Outcome.CRASHED
    assert results["a.py::b"].failure.phase is None
    assert results["a.py::c"].worker == "gw1"
    assert results["a.py::c"].position is None


def test_duplicate_testcases_keep_the_worse_outcome(tmp_path):
    """A teardown error after a passing call: ERROR wins, the phase is teardown."""
    case = ('<testcase classname="a" name="b" time="{t}"><properties>'
            '<property name="flakehunt_nodeid" value="a.py::b"/>'
            '<property name="flakehunt_worker" value="main"/>'
            '<property name="flakehunt_position" value="4"/></properties>{body}</testcase>')
    path = tmp_path / "junit.xml"
    path.write_text('<testsuites><testsuite name="x">'
                    + case.format(t="0.5", body="")
                    + case.format(t="0.25", body='<error message="failed on teardown with '
                                  '&quot;boom&quot;">trace</error>')
                    + "</testsuite></testsuites>")
    [r] = read_junit(path)
    assert r.outcome is Outcome.ERROR
    assert r.failure.phase == "teardown"
    assert r.position == 4
    assert r.duration == 0.5


def test_huge_file_is_refused_by_size(tmp_path, monkeypatch):
    from flakehunt import junit

    path = tmp_path / "junit.xml"
    path.write_bytes((JUNIT / "phases.xml").read_bytes())
    monkeypatch.setattr(junit, "MAX_BYTES", 100)
    with pytest.raises(UnreadableXML, match="cap"):
        read_junit(path)


def test_captured_files_are_small():
    for path in JUNIT.glob("*.xml"):
        assert Path(path).stat().st_size < 8192, path
