"""The terminal: a progress bar while running (stderr), a table and details after.

One rich Console each for stdout and stderr, both with markup and highlighting
off: test ids like ``test_x[param]`` and failure messages are shown verbatim.
Every string goes through :class:`rich.text.Text`, never parsed as markup.
"""

from __future__ import annotations

import sys
from typing import IO, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from flakehunt.model import Finding, HuntResult, RunResult, Verdict
from flakehunt.report import cluster_lines, detection_lines, failed_under, rate, summary

CONTROL = {c: f"\\x{c:02x}" for c in [*range(0, 32), *range(0x7f, 0xa0)] if c not in (9, 10)}


def safe(text: str) -> str:
    """Control characters (ESC, CR, ...) shown as \\xNN, never sent to the terminal:
    test ids and messages are hostile input."""
    return text.translate(CONTROL)


def T(text: str, style: str = "") -> Text:  # noqa: N802 - reads like Text
    return Text(safe(text), style=style)


def make_console(stderr: bool = False, file: IO[str] | None = None,
                 soft_wrap: bool = False) -> Console:
    """The one way flakehunt makes a rich Console: markup, highlighting and emoji off."""
    return Console(file=file or (sys.stderr if stderr else sys.stdout), markup=False,
                   highlight=False, emoji=False, soft_wrap=soft_wrap)


class ConsoleProgress:
    """Runs done/total, flaky found so far, time left. Writes to stderr."""

    def __init__(self, console: Console | None = None, enabled: bool = True) -> None:
        self.console = console or make_console(stderr=True)
        self.enabled = enabled
        self.bar: Progress | None = None
        self.task = TaskID(0)  # the bar's one task, once the bar starts
        self.flaky = 0

    def start(self, total: int, tests: int) -> None:
        self.console.print(T(f"flakehunt: {tests} tests, {total} runs"))
        if not self.enabled:
            return
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                            MofNCompleteColumn(), TextColumn("runs"),
                            TextColumn("flaky: {task.fields[flaky]}"),
                            TimeElapsedColumn(), TimeRemainingColumn(),
                            console=self.console, transient=True)
        self.bar.start()
        self.task = self.bar.add_task("hunting", total=total, flaky=0)

    def add_total(self, more: int) -> None:
        if self.bar is not None:
            task = self.bar.tasks[0]
            self.bar.update(self.task, total=(task.total or 0) + more)

    def run_done(self, run: RunResult, flaky: int) -> None:
        self.flaky = flaky
        if self.bar is not None:
            self.bar.update(self.task, advance=1, flaky=flaky)

    def note(self, text: str) -> None:
        if self.bar is not None:
            self.bar.update(self.task, description=text)
        else:
            self.console.print(T(text))

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


class ConsoleReporter:
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or make_console()

    def show(self, result: HuntResult) -> None:
        c = self.console
        for line in cluster_lines(result):
            _SoftWrap(c).print(T(line))
        shown = [f for f in result.findings if f.verdict in (Verdict.FLAKY, Verdict.FAILING)]
        if shown:
            table = Table(title=T("flaky and failing tests"), show_lines=True)
            for col in ("test", "verdict", "failed", "category", "fixture", "failed under"):
                table.add_column(col, overflow="fold")
            for f in shown:
                table.add_row(T(f.nodeid), T(f.verdict.value), T(rate(f)),
                              T(f.category or "-"), T(f.suspected_fixture or "-"),
                              T(failed_under(f)))
            c.print(table)
        for f in shown:
            if f.verdict is Verdict.FLAKY or f.problem:
                self.detail(f)
        for w in result.warnings:
            c.print(T(f"warning: {w}"))
        for line in detection_lines(result):
            _SoftWrap(c).print(T(line))
        c.print(T(summary(result)))

    def detail(self, f: Finding) -> None:
        """Long lines are not wrapped: a reproducer must stay one pasteable line."""
        c = _SoftWrap(self.console)
        c.print()
        head = f"{f.nodeid}  {f.verdict.value}"
        if f.category:
            head += f"  {f.category}"
        if f.problem:
            head += f"  ({f.problem})"
        c.print(T(head, style="bold"))
        for m in f.messages[:3]:
            c.print(T(f"  message: {m}"))
        if f.suspected_fixture:
            c.print(T(f"  suspected fixture: {f.suspected_fixture}"))
        if f.polluter:
            c.print(T(f"  polluter: {', '.join(f.polluter)}"))
        for e in f.evidence:
            c.print(T(f"  - {e}"))
        if f.confidence:
            c.print(T(f"  confidence: {f.confidence}"))
        if f.followups:
            kinds = ", ".join(f"{kind} {n}" for kind, n in f.followups.items())
            c.print(T(f"  follow-up runs: {sum(f.followups.values())} ({kinds})"))
        if f.fix_hint:
            c.print(T(f"  fix: {f.fix_hint}"))
        if f.fix is not None and f.fix.patch:
            c.print(T(f"  patch: {f.fix.patch} ({f.fix.status}): {f.fix.evidence}"))
        if f.reproduce:
            c.print(T(f"  reproduce: {f.reproduce}"))


class _SoftWrap:
    def __init__(self, console: Console) -> None:
        self.console = console

    def print(self, *things: Any, **kw: Any) -> None:
        self.console.print(*things, soft_wrap=True, **kw)
