"""GitHub Actions: annotations on the test's file and line, the step summary, the guard."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import textwrap
from dataclasses import replace

import pytest
import samples

from flakehunt.model import GateResult, KnownFlake
from flakehunt.report.github import (
    GitHubReporter,
    active,
    append_summary,
    command,
    escape_data,
    escape_property,
    guard,
    locate,
)
from flakehunt.report.json import JsonReporter, to_dict
from flakehunt.report.load import ResultFileError, from_dict, load


def test_escaping_is_the_toolkits():
    assert escape_data("50%\r\n::x") == "50%25%0D%0A::x"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    assert command("warning", "m", file="a,b.py", line=None) == "::warning file=a%2Cb.py::m"
    assert command("notice", "m") == "::notice::m"


def test_locate_finds_the_def_line(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(textwrap.dedent("""\
        import pytest


        class TestA:
            @pytest.mark.parametrize("x", [1])
            def test_b(self, x):
                pass


        async def test_c():
            pass
        """))
    assert locate(tmp_path, "tests/test_x.py::TestA::test_b[1]") == (
        tmp_path / "tests" / "test_x.py", 6)
    assert locate(tmp_path, "tests/test_x.py::test_c")[1] == 10
    assert locate(tmp_path, "tests/test_x.py::test_gone")[1] is None
    assert locate(tmp_path, "tests/missing.py::test_c")[1] is None


def test_annotations_by_gate_status(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("class TestA:\n    def test_race(self):\n"
                                                  "        pass\n")
    result = replace(samples.result(), rootdir=str(tmp_path / "tests" / ".."), gate=GateResult(
        "new", blocking={samples.HOSTILE_ID: "new"},
        quarantined=(KnownFlake(samples.RACE, "@al", "r", dt.date(2099, 1, 1)),)))
    lines = GitHubReporter(tmp_path).render(result).splitlines()
    evil, race = lines
    assert evil.startswith("::error file=tests/test_evil.py,title=flaky test fails the gate")
    assert race.startswith("::notice file=tests/test_a.py,line=2,title=quarantined flaky test")
    assert "failed 1/4 (25%25) runs, race, suspected fixture websocket" in race
    assert "%0Areproduce: python -m pytest" in race
    plain = GitHubReporter(tmp_path).render(replace(result, gate=None)).splitlines()
    assert all(line.startswith("::warning ") for line in plain)


def test_step_summary_is_appended(tmp_path):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    env = {"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_ACTIONS": "true"}
    assert active(env) and not active({})
    assert append_summary("## flakehunt", env)
    assert summary.read_text() == "earlier step\n## flakehunt\n"
    assert not append_summary("x", {})


def test_guard_brackets_output_with_a_fresh_token():
    out = io.StringIO()
    with guard(out):
        out.write("::error::not a command here\n")
    first, middle, last = out.getvalue().splitlines()
    token = first.removeprefix("::stop-commands::")
    assert middle == "::error::not a command here" and last == f"::{token}::"
    with guard(out):
        pass
    assert token not in out.getvalue().splitlines()[-1]  # a new token every time
    quiet = io.StringIO()
    with guard(quiet, enabled=False):
        quiet.write("x\n")
    assert quiet.getvalue() == "x\n"


# -- a saved result loads back --------------------------------------------------------------
def test_json_round_trip_is_lossless_for_reports():
    result = replace(samples.result(), gate=GateResult("new"))
    data = to_dict(result)
    again = from_dict(json.loads(json.dumps(data)))
    assert to_dict(again) == data
    assert again.findings == result.findings  # breakdowns and messages included
    assert [r.spec for r in again.runs] == [r.spec for r in result.runs]
    assert [r.spec.plan_index for r in again.runs] == [0, 1, 2, 3]
    assert again.runs[1].results[0].failure.message == samples.HOSTILE_MESSAGE


def test_loading_a_bad_file_is_a_usage_error(tmp_path):
    bad = tmp_path / "bad.json"
    for text, why in (("{", "is not JSON"), ('{"schema": 2, "tests": []}', "not a flakehunt"),
                      ('{"schema": 1, "tests": [{"nodeid": "x"}]}', "malformed")):
        bad.write_text(text)
        with pytest.raises(ResultFileError, match=why):
            load(bad)
    with pytest.raises(ResultFileError, match="cannot read"):
        load(tmp_path / "missing.json")
    good = tmp_path / "good.json"
    good.write_text(JsonReporter().render(samples.result()))
    assert re.search("state-leak", load(good).findings[0].category)
