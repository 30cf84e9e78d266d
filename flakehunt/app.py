"""The application layer: what each command does, once its options are typed settings.

``run`` hunts, gates the result, publishes the reports and records the hunt;
``merge`` does the same for a sharded hunt's saved results; ``report``
re-renders one; ``history`` and ``profiles`` show tables. Nothing here knows
click: the command line (:mod:`flakehunt.cli`) builds the settings and turns
what is raised here into exit codes.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from rich.console import Console

from flakehunt import gate
from flakehunt.errors import ExitCode, FlakehuntError, UsageError
from flakehunt.model import HuntResult, KnownFlake
from flakehunt.report import Reporter, github
from flakehunt.report.console import ConsoleProgress, ConsoleReporter, make_console
from flakehunt.settings import HuntSettings

DEFAULT_HISTORY = ".flakehunt/history.db"


class ReportWriteError(FlakehuntError):
    exit_code = ExitCode.SUITE


@dataclass(frozen=True)
class Outputs:
    """Where the reports go: a path per file format ('-': stdout), and GitHub's mode."""

    json_path: str | None = None
    junit_out: str | None = None
    html_path: str | None = None
    markdown: str | None = None
    github_mode: str = "auto"  # auto | on | off

    def __post_init__(self) -> None:
        paths = (self.json_path, self.junit_out, self.html_path, self.markdown)
        if paths.count("-") > 1:
            raise UsageError("only one report can go to stdout ('-')")

    def reporters(self) -> list[tuple[str, Reporter]]:
        from flakehunt.report.html import HtmlReporter
        from flakehunt.report.json import JsonReporter
        from flakehunt.report.junit_xml import JUnitReporter
        from flakehunt.report.markdown import MarkdownReporter

        pairs: list[tuple[str | None, Reporter]] = [
            (self.json_path, JsonReporter()), (self.junit_out, JUnitReporter()),
            (self.html_path, HtmlReporter()), (self.markdown, MarkdownReporter())]
        return [(path, reporter) for path, reporter in pairs if path]

    @property
    def to_stdout(self) -> bool:
        return "-" in (self.json_path, self.junit_out, self.html_path, self.markdown)

    @property
    def github(self) -> bool:
        return self.github_mode == "on" or (self.github_mode == "auto" and github.active())

    @property
    def guarded(self) -> bool:
        """Under GitHub Actions the tests' text is never read for commands, --github off
        or not."""
        return self.github or github.active()


@dataclass(frozen=True)
class GateSettings:
    """How a finished hunt is judged and kept: ``--fail-on``, the quarantine, history."""

    fail_on: str = "flaky"
    #: the known-flakes file (None: ./known-flakes.toml if there)
    known_flakes: str | None = None
    history: Path = Path(DEFAULT_HISTORY)
    #: record the hunt in the history file
    record: bool = True

    def known(self) -> dict[str, KnownFlake]:
        """The quarantine; a bad file is a UsageError, raised before any hunt."""
        return gate.find_known(self.known_flakes, Path.cwd())


@dataclass(frozen=True)
class RunRequest:
    """Everything `flakehunt run` was asked."""

    settings: HuntSettings = field(default_factory=HuntSettings)
    outputs: Outputs = field(default_factory=Outputs)
    gate: GateSettings = field(default_factory=GateSettings)
    #: hunt only the tests the branch touched (``--changed``), compared with ``base``
    changed: bool = False
    base: str | None = None
    progress: bool = True
    #: make, verify and write a patch per root cause here (``--patch-dir``)
    patch_dir: Path | None = None


def hunt(settings: HuntSettings, progress: ConsoleProgress) -> HuntResult:
    """The hunt itself (imported when needed: `flakehunt --version` need not load it)."""
    from flakehunt.hunt import hunt as run_hunt

    return run_hunt(settings, progress)


def run(request: RunRequest) -> int:
    """Hunt, gate, publish, record; the exit code."""
    known = request.gate.known()  # a bad file fails before the hunt
    settings = request.settings
    if request.base and not request.changed:
        raise UsageError("--base goes with --changed")
    if request.changed:
        selection = changed_selection(settings, request.base)
        if not selection:
            make_console(stderr=True).print("flakehunt: no test is touched by the changes on "
                                            "this branch: nothing to hunt")
            return ExitCode.OK
        settings = replace(settings, selection=selection)
    stderr = make_console(stderr=True)
    progress = ConsoleProgress(stderr, enabled=request.progress and stderr.is_terminal)
    try:
        result = hunt(settings, progress)
    finally:
        progress.stop()
    if request.patch_dir is not None:
        result = prove(result, settings, request.patch_dir)
    # a shard is part of a hunt: `flakehunt merge` records the whole
    record = request.gate.record and settings.shard is None
    return finish(result, request.outputs, request.gate, known, record)


def prove(result: HuntResult, settings: HuntSettings, where: Path) -> HuntResult:
    """Each root cause's patch, verified in a scratch copy, written to ``where``."""
    from flakehunt.fixing import prove as prove_fixes
    from flakehunt.patchdir import write_dir

    err = make_console(stderr=True, soft_wrap=True)
    if result.interrupted:
        err.print("flakehunt: the hunt was interrupted: no patches made")
        return result
    result = prove_fixes(result, settings, note=lambda text: err.print(f"flakehunt: {text}"))
    written = write_dir(result, where)
    err.print(f"flakehunt: {len(written) - 1} patch(es) and an index written to {where}")
    return result


def fix(path: str, apply: bool, force: bool, root: Path | None) -> None:
    """`flakehunt fix`: print a saved result's patches, or apply them."""
    from flakehunt.patchdir import fix as fix_patches
    from flakehunt.report.load import load

    out, notes = fix_patches(load(path), apply, force, root)
    if out:
        write_output("-", out)
    if notes:
        make_console(stderr=True, soft_wrap=True).print(notes, markup=False, highlight=False)


def changed_selection(settings: HuntSettings, base: str | None) -> tuple[str, ...]:
    """The tests of the selection that the changes since ``base`` touch."""
    from flakehunt import changed

    cwd = Path.cwd()
    base = base or changed.default_base(cwd)
    files = changed.changed_files(cwd, base)
    with tempfile.TemporaryDirectory(prefix="flakehunt-changed-") as tmp:
        tests = changed.fixture_map(settings.python, settings.selection, settings.pytest_args,
                                    cwd, Path(tmp))
    return tuple(changed.select(tests, files))


def merge(paths: Sequence[str], outputs: Outputs, gating: GateSettings) -> int:
    """Combine a sharded hunt's saved results, then gate, publish and record the whole."""
    from flakehunt.clusters import group
    from flakehunt.merge import merge as merge_results
    from flakehunt.report.load import load

    known = gating.known()
    result = merge_results([load(p) for p in paths], names=list(paths))
    result = replace(result, clusters=tuple(group(result.findings)))
    return finish(result, outputs, gating, known, record=gating.record)


def report(path: str, outputs: Outputs) -> None:
    """Re-render a saved --json result."""
    from flakehunt.report.load import load

    publish(load(path), outputs)


def finish(result: HuntResult, outputs: Outputs, gating: GateSettings,
           known: dict[str, KnownFlake], record: bool) -> int:
    """Gate, publish, record: the end of `run` and `merge`; the exit code."""
    verdict = gate.evaluate(result, gating.fail_on, known)
    result = replace(result, gate=verdict)
    publish(result, outputs)
    err = make_console(stderr=True, soft_wrap=True)
    if verdict.blocking or verdict.quarantined or verdict.stale:
        with github.guard(err.file, enabled=outputs.guarded):
            err.print(verdict.message())
    if record:
        from flakehunt.history import HistoryError
        from flakehunt.history import record as record_hunt

        try:
            record_hunt(gating.history, result)
        except HistoryError as exc:
            err.print(f"flakehunt: warning: {exc}")
    if result.interrupted:
        return result.interrupted
    return ExitCode.FLAKY if verdict.failed else ExitCode.OK


def publish(result: HuntResult, outputs: Outputs) -> None:
    """The console report, every requested file, and GitHub's summary and annotations."""
    from flakehunt.report.markdown import MarkdownReporter

    console = make_console(stderr=outputs.to_stdout)
    with github.guard(console.file, enabled=outputs.guarded):
        try:
            ConsoleReporter(console).show(result)
        except OSError as exc:
            raise ReportWriteError(f"cannot write the console report: "
                                   f"{exc.strerror or exc}") from None
    for path, reporter in outputs.reporters():
        write_output(path, pieces(reporter, result))
    if outputs.github:
        try:
            github.append_summary(MarkdownReporter().render(result))
        except OSError as exc:
            raise ReportWriteError(f"cannot write $GITHUB_STEP_SUMMARY: {exc}") from None
        stream = sys.stderr if outputs.to_stdout else sys.stdout
        stream.write(github.GitHubReporter().render(result))
        stream.flush()


def pieces(reporter: Reporter, result: HuntResult) -> Iterable[str]:
    """A report's text, in the pieces its format makes (the JSON's: one run at a time, so
    its runs x tests results are never all held as text at once), else whole."""
    chunks = getattr(reporter, "chunks", None)
    return chunks(result) if chunks is not None else (reporter.render(result),)


def write_output(path: str, text: str | Iterable[str]) -> None:
    parts = (text,) if isinstance(text, str) else text
    if path == "-":
        try:
            for part in parts:
                sys.stdout.write(part)
            sys.stdout.flush()
        except OSError as exc:  # a full disk, a closed pipe
            raise ReportWriteError(f"cannot write the report to stdout: "
                                   f"{exc.strerror or exc}") from None
        return
    try:
        with open(path, "w", encoding="utf-8") as out:
            for part in parts:
                out.write(part)
    except OSError as exc:
        raise ReportWriteError(f"cannot write {path}: {exc.strerror or exc}") from None


def show_history(test: str | None, path: Path, limit: int) -> None:
    """Flake rate over time: per test (or one test per hunt), and per commit."""
    from flakehunt import history

    out = make_console()

    def pct(bad: int, ran: int) -> str:
        return f"{bad}/{ran} ({bad / ran:.0%})" if ran else "-"

    if test:
        hunts = history.per_hunt(path, test, limit)
        if not hunts:
            raise UsageError(f"no test matching {test!r} in {path}")
        table(out, f"{test} over time",
              ("recorded", "commit", "test", "verdict", "failed", "category"),
              [(w, c[:10], n, v, pct(b, r), cat) for w, c, n, v, b, r, cat in hunts])
    else:
        rows = history.per_test(path, None, limit)
        table(out, "tests ever flaky or failing",
              ("test", "hunts", "flaky in", "failed", "last"),
              [(r.key, r.hunts, r.flaky_in, pct(r.bad, r.runs), r.last) for r in rows])
    commits = history.per_commit(path, test, limit)
    table(out, "per commit", ("commit", "branch", "hunts", "flaky tests", "failed", "last"),
          [(r.key[:10], r.branch, r.hunts, r.flaky_in, pct(r.bad, r.runs), r.last)
           for r in commits])


def table(out: Console, title: str, columns: tuple[str, ...],
          rows: Sequence[Sequence[object]]) -> None:
    """One table; None shows as '-'."""
    from rich.table import Table
    from rich.text import Text

    t = Table(title=Text(title))
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*(Text(str(c) if c is not None else "-") for c in row))
    out.print(t)


def show_profiles() -> None:
    """Every CPU profile, and whether it works on this machine."""
    from flakehunt.profiles import PROFILES

    out = make_console(soft_wrap=True)
    for p in PROFILES.values():
        a = p.availability()
        state = f"available via {a.mechanism}" if a.available else f"unavailable: {a.why}"
        out.print(f"{p.name:14} {state:40} {p.description}")
