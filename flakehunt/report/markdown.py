"""Markdown (``--markdown``, and GitHub's ``$GITHUB_STEP_SUMMARY``).

Test ids and messages are hostile input: in Markdown text every ASCII
punctuation character is backslash-escaped and ``& < >`` become entities (no
emphasis, links, HTML, table breaks or mentions can come out of them); inside
HTML (``<summary>``) they are HTML-escaped; code goes in a fence longer than
any run of backticks in it.
"""

from __future__ import annotations

import html
import re
import string

from flakehunt.model import Finding, GateResult, HuntResult, Verdict
from flakehunt.report import cluster_lines, failed_under, rate, summary

#: flaky tests given a details block; the table lists them all
MAX_DETAILS = 50
ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def md(text: object) -> str:
    """Plain text that Markdown shows as is, on one line."""
    out = []
    for ch in " ".join(str(text).splitlines()):
        if ch in ENTITIES:
            out.append(ENTITIES[ch])
        elif ch in string.punctuation:
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def fence(text: str, lang: str = "") -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{text}\n{ticks}"


def gate_status(result: HuntResult, f: Finding) -> str:
    gate = result.gate
    if gate is None:
        return ""
    if f.nodeid in gate.blocking:
        return "fails the gate: " + gate.blocking[f.nodeid]
    if gate.quarantines(f.nodeid):
        return "quarantined"
    return ""


def gate_line(gate: GateResult) -> str:
    status = "failed" if gate.failed else "passed"
    return (f"**Gate** (`--fail-on {gate.fail_on}`): **{status}**"
            + (f": {len(gate.blocking)} flaky test(s) fail it" if gate.blocking else ""))


def details(result: HuntResult, f: Finding) -> list[str]:
    head = f"{f.nodeid} - {f.verdict.value}" + (f", {f.category}" if f.category else "")
    lines = ["<details>", f"<summary>{html.escape(head)}</summary>", ""]
    items = [f"**message:** {md(m)}" for m in f.messages[:3]]
    if f.suspected_fixture:
        items.append(f"**suspected fixture:** {md(f.suspected_fixture)}")
    if f.polluter:
        items.append(f"**polluter:** {md(', '.join(f.polluter))}")
    items += [md(e) for e in f.evidence]
    under = failed_under(f)
    if under:
        items.append(f"**failed under:** {md('; '.join(under.splitlines()))}")
    if f.confidence:
        items.append(f"**confidence:** {md(f.confidence)}")
    if f.fix_hint:
        items.append(f"**fix:** {md(f.fix_hint)}")
    quarantines = result.gate.quarantines(f.nodeid) if result.gate else []
    items += [f"**quarantined** by {md(q.owner)} until {md(q.expires.isoformat())}: "
              f"{md(q.reason)}" for q in quarantines]
    lines += [f"- {item}" for item in items]
    if f.reproduce:
        lines += ["", "reproduce:", "", fence(f.reproduce, "sh")]
    return lines + ["", "</details>", ""]


class MarkdownReporter:
    def render(self, result: HuntResult) -> str:
        lines = [f"## flakehunt: {md(summary(result))}", ""]
        if result.gate is not None:
            lines += [gate_line(result.gate), ""]
        causes = cluster_lines(result)
        if causes:
            lines += [f"**{md(causes[0])}**", ""] + [md(x) for x in causes[1:]] + [""]
        shown = [f for f in result.findings if f.verdict in (Verdict.FLAKY, Verdict.FAILING)]
        if shown:
            lines += ["| test | verdict | failed | category | fixture | gate |",
                      "|---|---|---|---|---|---|"]
            for f in shown:
                lines.append(f"| {md(f.nodeid)} | {f.verdict.value} | {md(rate(f))} | "
                             f"{md(f.category or '-')} | {md(f.suspected_fixture or '-')} | "
                             f"{md(gate_status(result, f) or '-')} |")
            lines.append("")
        flaky = [f for f in shown if f.verdict is Verdict.FLAKY or f.problem]
        for f in flaky[:MAX_DETAILS]:
            lines += details(result, f)
        if len(flaky) > MAX_DETAILS:
            lines += [f"... and {len(flaky) - MAX_DETAILS} more in the full report.", ""]
        if result.warnings:
            lines += ["**warnings:**", ""] + [f"- {md(w)}" for w in result.warnings]
        return "\n".join(lines).rstrip("\n") + "\n"
