"""Test output is hostile input: a test id and a message full of workflow commands
(``::error::``, ``%0A``), HTML (``<script>``) and Markdown come out escaped in every
format, and still say what they said."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
import samples

from flakehunt.report import Reporter
from flakehunt.report.console import ConsoleReporter, make_console
from flakehunt.report.github import GitHubReporter, guard
from flakehunt.report.html import HtmlReporter
from flakehunt.report.json import JsonReporter
from flakehunt.report.junit_xml import JUnitReporter
from flakehunt.report.markdown import MarkdownReporter

FIRST_LINE = samples.HOSTILE_MESSAGE.split("\n")[0]


@pytest.fixture(scope="module")
def result():
    return samples.result()


def test_every_reporter_has_the_one_interface():
    reporters: list[Reporter] = [JsonReporter(), JUnitReporter(), MarkdownReporter(),
                                 HtmlReporter(), GitHubReporter("/repo")]
    for reporter in reporters:
        assert isinstance(reporter.render(samples.result()), str)


def test_json_keeps_the_text_exactly(result):
    data = json.loads(JsonReporter().render(result))
    evil = next(t for t in data["tests"] if t["nodeid"] == samples.HOSTILE_ID)
    assert evil["evidence"] == [samples.HOSTILE_MESSAGE]
    failure = data["runs"][1]["results"][0]["failure"]
    assert failure["message"] == samples.HOSTILE_MESSAGE
    assert failure["text"] == samples.HOSTILE_TEXT


def test_junit_escapes_and_keeps_the_text(result):
    text = JUnitReporter().render(result)
    assert "<script>" not in text and "<img" not in text
    root = ET.fromstring(text)
    suite = next(s for s in root if s.get("name") == samples.HOSTILE_ID)
    attempt = suite.find("testcase/flakyFailure")
    assert attempt.get("message") == FIRST_LINE
    props = [p.get("value") for p in suite.iter("property")
             if p.get("name") == "flakehunt.evidence"]
    assert props == [samples.HOSTILE_MESSAGE]


ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "div", "b",
                "ul", "li", "table", "tr", "th", "td", "a", "section", "svg", "rect", "text",
                "pre", "details", "summary", "span"}


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    def handle_data(self, data):
        self.text.append(data)


def test_html_has_no_element_or_attribute_of_the_tests(result):
    page = HtmlReporter().render(result)
    assert "<script" not in page.lower() and "<img" not in page.lower()
    parser = Tags()
    parser.feed(page)
    assert {tag for tag, _ in parser.tags} <= ALLOWED_TAGS
    attributes = {name for _, attrs in parser.tags for name, _ in attrs}
    assert not {a for a in attributes if a.startswith("on")}
    hrefs = [v for tag, attrs in parser.tags for k, v in attrs if k in ("href", "src")]
    assert all(h.startswith("#t") for h in hrefs)  # in-page anchors only, nothing fetched
    text = "".join(parser.text)
    assert samples.HOSTILE_ID in text  # shown, as text
    assert "<script>alert('x')</script>" in text


def unescaped_pipes(row: str) -> int:
    return len(re.findall(r"(?<!\\)\|", row))


def test_markdown_escapes_markdown_html_and_table_cells(result):
    text = MarkdownReporter().render(result)
    # code (the reproducer) is in a fence longer than any backtick run in it: nothing in a
    # fenced block is interpreted, and nothing in it can close the fence early
    fences = re.findall(r"^(`{3,})sh\n(.*?)\n\1$", text, flags=re.MULTILINE | re.DOTALL)
    assert fences and all(f"\n{ticks}" not in code for ticks, code in fences)
    prose = re.sub(r"^(`{3,})sh\n.*?\n\1$", "", text, flags=re.MULTILINE | re.DOTALL)
    assert "<script" not in prose and "<img" not in prose
    assert "**bold**" not in prose and "](http" not in prose and " @someone" not in prose
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert rows and all(unescaped_pipes(r) == 7 for r in rows)  # 6 cells, no extra
    assert r"\*\*bold\*\*" in text and "&lt;script&gt;" in text
    # <summary> is an HTML block, where Markdown is not parsed: escaped for HTML
    [summary] = [line for line in text.splitlines() if "<summary>tests/test_evil" in line]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in summary and summary.count("<") == 2
    # the reproducer ends with backticks: its fence is longer
    assert "````sh\npython -m pytest" in text


def unescape(data: str) -> str:
    return data.replace("%0A", "\n").replace("%0D", "\r").replace("%3A", ":").replace(
        "%2C", ",").replace("%25", "%")


def test_github_annotations_are_one_line_each_and_carry_no_command(result):
    text = GitHubReporter("/").render(result)
    lines = text.splitlines()
    assert len(lines) == len(result.flaky) == 2
    for line in lines:
        m = re.fullmatch(r"::(error|warning|notice) ([^:]*)::(.*)", line)
        assert m, line  # properties hold no raw ':' - the first '::' ends them
        props = dict(p.split("=", 1) for p in m.group(2).split(","))
        assert set(props) <= {"file", "line", "title"}
        assert "\r" not in m.group(3)
    evil = next(line for line in lines if "test_evil" in line)
    data = evil.split("::", 2)[2]
    assert "%250A" in data  # the test's own "%0A" cannot become a newline
    assert samples.HOSTILE_MESSAGE.split("\n")[0] in unescape(data)
    title = dict(p.split("=", 1) for p in evil.split("::")[1].split(" ", 1)[1].split(","))["title"]
    assert unescape(title).endswith(samples.HOSTILE_ID)


def test_console_shows_the_text_verbatim_and_guarded(result, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    buf = io.StringIO()
    with guard(buf):
        ConsoleReporter(make_console(file=buf)).show(result)
    text = buf.getvalue()
    first, *_, last = text.splitlines()
    token = first.removeprefix("::stop-commands::")
    assert re.fullmatch(r"[0-9a-f]{32}", token) and last == f"::{token}::"
    assert FIRST_LINE in text  # rich took nothing as markup
    assert "[link](http://evil)" in text
