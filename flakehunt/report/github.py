"""GitHub Actions: workflow annotations on each flaky test's file and line.

:class:`GitHubReporter` renders one ``::warning``/``::error``/``::notice``
command per flaky test. Test ids and messages are hostile input: data is
escaped (``%`` first, then CR and LF) and properties also escape ``:`` and
``,``, the way the Actions toolkit does, so one annotation stays one line and
no text can start a command of its own. :func:`guard` stops command
processing around output that is not ours (the console report) with
``::stop-commands::`` and a random token.
"""

from __future__ import annotations

import ast
import os
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from flakehunt.model import Finding, HuntResult
from flakehunt.report import nodeid_parts, rate


def active(env: Mapping[str, str] | None = None) -> bool:
    return (os.environ if env is None else env).get("GITHUB_ACTIONS") == "true"


def escape_data(text: object) -> str:
    return str(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: object) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(kind: str, message: str, **props: object) -> str:
    given = ",".join(f"{k}={escape_property(v)}" for k, v in props.items() if v is not None)
    return f"::{kind}{' ' + given if given else ''}::{escape_data(message)}"


def locate(rootdir: str | Path, nodeid: str) -> tuple[Path, int | None]:
    """The test's file (under rootdir) and the line of its ``def``, if the file parses."""
    path, *names = nodeid_parts(nodeid)
    file = Path(rootdir) / path
    if not names:
        return file, None
    names[-1] = names[-1].split("[", 1)[0]
    try:
        body = ast.parse(file.read_text(encoding="utf-8")).body
    except (OSError, SyntaxError, ValueError):
        return file, None
    node = None
    for name in names:
        node = next((n for n in body if isinstance(
            n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name), None)
        if node is None:
            return file, None
        body = node.body
    return file, node.lineno if node is not None else None


def message(f: Finding) -> str:
    lines = [f"{f.nodeid} is flaky: failed {rate(f)} runs"
             + (f", {f.category}" if f.category else "")
             + (f", suspected fixture {f.suspected_fixture}" if f.suspected_fixture else "")]
    if f.polluter:
        lines.append("polluter: " + ", ".join(f.polluter))
    lines += [f"message: {m}" for m in f.messages[:1]]
    if f.reproduce:
        lines.append(f"reproduce: {f.reproduce}")
    return "\n".join(lines)


class GitHubReporter:
    """Annotations; ``workspace`` is what file paths are made relative to."""

    def __init__(self, workspace: str | Path | None = None) -> None:
        self.workspace = Path(workspace or os.environ.get("GITHUB_WORKSPACE") or Path.cwd())

    def render(self, result: HuntResult) -> str:
        blocking = result.gate.blocking if result.gate else {}
        quarantined = {q.test for q in result.gate.quarantined} if result.gate else set()
        out = []
        for f in result.flaky:
            file, line = locate(result.rootdir, f.nodeid)
            try:
                shown = file.resolve().relative_to(self.workspace.resolve()).as_posix()
            except ValueError:
                shown = file.as_posix()
            if f.nodeid in blocking:
                kind, title = "error", f"flaky test fails the gate ({blocking[f.nodeid]})"
            elif f.nodeid in quarantined:
                kind, title = "notice", "quarantined flaky test"
            else:
                kind, title = "warning", "flaky test"
            out.append(command(kind, message(f), file=shown, line=line,
                               title=f"{title}: {f.nodeid}"))
        return "".join(line + "\n" for line in out)


def append_summary(markdown: str, env: Mapping[str, str] | None = None) -> bool:
    """Append to ``$GITHUB_STEP_SUMMARY``; False when there is none."""
    path = (os.environ if env is None else env).get("GITHUB_STEP_SUMMARY")
    if not path:
        return False
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(markdown + "\n")
    return True


@contextmanager
def guard(*streams: IO[str], enabled: bool = True) -> Iterator[None]:
    """No workflow command is run from what is printed inside (on any of ``streams``)."""
    if not enabled:
        yield
        return
    token = secrets.token_hex(16)
    for s in streams:
        s.flush()
        s.write(f"::stop-commands::{token}\n")
        s.flush()
    try:
        yield
    finally:
        for s in streams:
            s.flush()
            s.write(f"::{token}::\n")
            s.flush()
