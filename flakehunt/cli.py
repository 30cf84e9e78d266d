"""The command line: a thin click layer over flakehunt.hunt.

Exceptions become exit codes in one place, :func:`main`. Data goes to stdout
or a file; progress and chatter to stderr.
"""

from __future__ import annotations

import re
import signal
import sys
import tempfile
import traceback
from dataclasses import dataclass, replace
from pathlib import Path

import click

from flakehunt import __version__, config, gate
from flakehunt.errors import ExitCode, FlakehuntError, UsageError
from flakehunt.hunt import HuntSettings, Interrupted, hunt
from flakehunt.model import HuntResult
from flakehunt.profiles import DEFAULT as PROFILE_DEFAULT
from flakehunt.report import Reporter, github
from flakehunt.report.console import ConsoleProgress, ConsoleReporter, make_console

ISSUES_URL = "https://github.com/flakehunt/flakehunt/issues"


def int_list(ctx, param, value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        out = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of numbers") from None
    if not out or any(v < 0 for v in out):
        raise click.BadParameter(f"{value!r}: give counts >= 0, e.g. 0,2")
    return out


def name_list(ctx, param, value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    out = tuple(v.strip() for v in value.split(",") if v.strip())
    if not out:
        raise click.BadParameter("give at least one name")
    return out


def duration(ctx, param, value: str | None) -> float | None:
    """``90``, ``90s``, ``10m``, ``1h30m``, ``1.5h`` -> seconds."""
    if value is None:
        return None
    m = re.fullmatch(r"(?:([\d.]+)h)?(?:([\d.]+)m)?(?:([\d.]+)s?)?", str(value).replace(" ", ""))
    try:
        h, mins, secs = (float(g) if g else 0.0 for g in m.groups()) if m else (0, 0, 0)
    except ValueError:
        h = mins = secs = 0
    total = h * 3600 + mins * 60 + secs
    if total <= 0:
        raise click.BadParameter(f"{value!r} is not a duration, e.g. 90s, 10m, 1h30m")
    return total


def shard(ctx, param, value: str | None) -> tuple[int, int] | None:
    from flakehunt.merge import parse_shard

    return None if value is None else parse_shard(str(value))


class RunCommand(click.Command):
    """Everything after ``--`` goes to pytest untouched (else ``pytest-args`` from config)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            at = args.index("--")
            args, ctx.meta["pytest_args"] = args[:at], tuple(args[at + 1:])
        elif configured := ctx.lookup_default("pytest_args"):
            ctx.meta["pytest_args"] = tuple(configured)
        return super().parse_args(ctx, args)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="flakehunt")
@click.option("--debug", is_flag=True, help="Show flakehunt's own tracebacks.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True),
              help="Read [tool.flakehunt] from this TOML file (default: the nearest "
                   "pyproject.toml).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, config_path: str | None) -> None:
    """Hunt flaky pytest tests and say why."""
    ctx.obj = {"debug": debug}
    path = Path(config_path) if config_path else config.find_pyproject(Path.cwd())
    if path is not None:
        ctx.default_map = config.default_map(config.read(path), dict(cli.commands), str(path))


# -- options shared by the commands that produce a result -------------------------------
def output_options(f):
    options = [
        click.option("--json", "json_path", type=click.Path(dir_okay=False, allow_dash=True),
                     help="Write the machine report here ('-' for stdout)."),
        click.option("--junit-out", type=click.Path(dir_okay=False, allow_dash=True),
                     help="Write JUnit XML here: one testcase per test, flaky attempts as "
                          "flakyFailure/flakyError."),
        click.option("--html", "html_path", type=click.Path(dir_okay=False, allow_dash=True),
                     help="Write a self-contained HTML page with charts here."),
        click.option("--markdown", type=click.Path(dir_okay=False, allow_dash=True),
                     help="Write a Markdown summary here."),
        click.option("--github", "github_mode", type=click.Choice(["auto", "on", "off"]),
                     default="auto", show_default=True,
                     help="Annotations and a $GITHUB_STEP_SUMMARY (auto: when GITHUB_ACTIONS "
                          "is true)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def gate_options(f):
    options = [
        click.option("--fail-on", type=click.Choice(gate.POLICIES), default="flaky",
                     show_default=True,
                     help="Exit 1 on any flaky test, only on new or worsened ones (not "
                          "quarantined in the known-flakes file), or never."),
        click.option("--known-flakes", type=click.Path(dir_okay=False),
                     help=f"Quarantine file (default: ./{gate.DEFAULT_FILE} if present)."),
        click.option("--history", "history_path", type=click.Path(dir_okay=False),
                     default=".flakehunt/history.db", show_default=True,
                     help="SQLite file every hunt is recorded in."),
        click.option("--no-history", is_flag=True, help="Do not record this hunt."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@dataclass(frozen=True)
class Outputs:
    json_path: str | None = None
    junit_out: str | None = None
    html_path: str | None = None
    markdown: str | None = None
    github_mode: str = "auto"

    def reporters(self) -> list[tuple[str, Reporter]]:
        from flakehunt.report.html import HtmlReporter
        from flakehunt.report.json import JsonReporter
        from flakehunt.report.junit_xml import JUnitReporter
        from flakehunt.report.markdown import MarkdownReporter

        pairs: list[tuple[str | None, Reporter]] = [
            (self.json_path, JsonReporter()), (self.junit_out, JUnitReporter()),
            (self.html_path, HtmlReporter()), (self.markdown, MarkdownReporter())]
        return [(path, reporter) for path, reporter in pairs if path]

    def __post_init__(self) -> None:
        paths = (self.json_path, self.junit_out, self.html_path, self.markdown)
        if paths.count("-") > 1:
            raise UsageError("only one report can go to stdout ('-')")

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


def publish(result: HuntResult, out: Outputs) -> None:
    """The console report, every requested file, and GitHub's summary and annotations."""
    from flakehunt.report.markdown import MarkdownReporter

    console = make_console(stderr=out.to_stdout)
    with github.guard(console.file, enabled=out.guarded):
        try:
            ConsoleReporter(console).show(result)
        except OSError as exc:
            raise ReportWriteError(f"cannot write the console report: "
                                   f"{exc.strerror or exc}") from None
    for path, reporter in out.reporters():
        write_output(path, reporter.render(result))
    if out.github:
        try:
            github.append_summary(MarkdownReporter().render(result))
        except OSError as exc:
            raise ReportWriteError(f"cannot write $GITHUB_STEP_SUMMARY: {exc}") from None
        stream = sys.stderr if out.to_stdout else sys.stdout
        stream.write(github.GitHubReporter().render(result))
        stream.flush()


def finish(ctx: click.Context, result: HuntResult, out: Outputs, fail_on: str,
           known: dict[str, gate.KnownFlake], history_path: str, record: bool) -> None:
    """Gate, publish, record, exit: the end of `run` and `merge`."""
    verdict = gate.evaluate(result, fail_on, known)
    result = replace(result, gate=verdict.as_dict())
    publish(result, out)
    err = make_console(stderr=True, soft_wrap=True)
    if verdict.blocking or verdict.quarantined or verdict.stale:
        with github.guard(err.file, enabled=out.guarded):
            err.print(verdict.message())
    if record:
        from flakehunt.history import HistoryError
        from flakehunt.history import record as record_hunt

        try:
            record_hunt(Path(history_path), result)
        except HistoryError as exc:
            err.print(f"flakehunt: warning: {exc}")
    if result.interrupted:
        ctx.exit(result.interrupted)
    ctx.exit(ExitCode.FLAKY if verdict.failed else ExitCode.OK)


@cli.command(cls=RunCommand)
@click.argument("selection", nargs=-1)
@click.option("--runs", default=50, show_default=True, type=click.IntRange(min=1),
              help="At most this many sweep runs, each a fresh pytest process.")
@click.option("--min-rate", type=click.FloatRange(min=0, max=1, max_open=True), default=0.2,
              show_default=True,
              help="Stop the sweep once every test is flaky or gave one outcome often enough "
                   "to rule out failing (or passing) at this rate, at 95% confidence "
                   "(0.2: 14 runs, 0.1: 29, 0.05: 59; 0: run all --runs).")
@click.option("--seed", type=int, help="Seed of the whole plan (orders, random seeds).")
@click.option("--workers", callback=int_list, default="0,2", show_default=True,
              help="xdist worker counts to spread runs over (0: no xdist).")
@click.option("--profiles", callback=name_list, default=",".join(PROFILE_DEFAULT),
              show_default=True,
              help="CPU profiles to spread runs over (see `flakehunt profiles`).")
@click.option("--dist", callback=name_list, default="load", show_default=True,
              help="xdist --dist modes to spread parallel runs over, e.g. load,worksteal.")
@click.option("--jobs", type=click.IntRange(min=0), default=0,
              help="CPU slots for concurrent runs (0: one per CPU).")
@click.option("--python", "python", default=sys.executable, show_default="this interpreter",
              help="Interpreter of the suite's environment (needs pytest, xdist, flakehunt).")
@click.option("--run-timeout", type=click.FloatRange(min=0, min_open=True), default=300.0,
              show_default=True, help="Seconds before a run is killed as hung.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Keep every run's XML, events and log in this folder.")
@click.option("--no-classify", is_flag=True, help="Verdicts only: skip the follow-up runs.")
@click.option("--no-evidence", is_flag=True,
              help="Children skip the fixture/loop/state probes (faster, less explained).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--budget", callback=duration,
              help="Start no new sweep run after this long (e.g. 10m, 1h30m); the report says "
                   "how many runs it covered.")
@click.option("--shard", "shard_spec", callback=shard,
              help="Run only shard i of n of the plan's sweep runs (e.g. 2/4); combine the "
                   "results with `flakehunt merge`.")
@click.option("--changed", is_flag=True,
              help="Hunt only tests in files changed on this branch, and tests using fixtures "
                   "from changed conftest files.")
@click.option("--base", help="Branch or commit --changed compares with (default: the pull "
                             "request's base, else origin's default branch).")
@output_options
@gate_options
@click.pass_context
def run(ctx: click.Context, selection, runs, min_rate, seed, workers, profiles, dist, jobs, python,
        run_timeout, workdir, no_classify, no_evidence, no_progress, budget, shard_spec,
        changed, base, json_path, junit_out, html_path, markdown, github_mode, fail_on,
        known_flakes, history_path, no_history) -> None:
    """Run SELECTION (paths or test ids) many times and report flaky tests.

    Arguments after `--` are passed to every pytest run.
    """
    out = Outputs(json_path, junit_out, html_path, markdown, github_mode)
    known = gate.find_known(known_flakes, Path.cwd())  # a bad file fails before the hunt
    pytest_args = ctx.meta.get("pytest_args", ())
    if base and not changed:
        raise UsageError("--base goes with --changed")
    if changed:
        selection = changed_selection(python, tuple(selection), pytest_args, base)
        if not selection:
            make_console(stderr=True).print("flakehunt: no test is touched by the changes on "
                                            "this branch: nothing to hunt")
            ctx.exit(ExitCode.OK)
    settings = HuntSettings(
        selection=tuple(selection), pytest_args=pytest_args, runs=runs,
        seed=seed, workers=workers, profiles=profiles, dist=dist, jobs=jobs, python=python,
        run_timeout=run_timeout, workdir=workdir, classify=not no_classify,
        evidence=not no_evidence, budget=budget, shard=shard_spec, min_rate=min_rate)
    stderr = make_console(stderr=True)
    progress = ConsoleProgress(stderr, enabled=not no_progress and stderr.is_terminal)
    try:
        result = hunt(settings, progress)
    finally:
        progress.stop()
    # a shard is part of a hunt: `flakehunt merge` records the whole
    finish(ctx, result, out, fail_on, known, history_path,
           record=not no_history and shard_spec is None)


def changed_selection(python: str, selection: tuple[str, ...], pytest_args: tuple[str, ...],
                      base: str | None) -> tuple[str, ...]:
    from flakehunt import changed

    cwd = Path.cwd()
    base = base or changed.default_base(cwd)
    files = changed.changed_files(cwd, base)
    with tempfile.TemporaryDirectory(prefix="flakehunt-changed-") as tmp:
        tests = changed.fixture_map(python, selection, pytest_args, cwd, Path(tmp))
    return tuple(changed.select(tests, files))


@cli.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(dir_okay=False))
@output_options
@gate_options
@click.pass_context
def merge(ctx: click.Context, results, json_path, junit_out, html_path, markdown, github_mode,
          fail_on, known_flakes, history_path, no_history) -> None:
    """Combine the --json results of a sharded hunt (--shard i/n) into one result."""
    from flakehunt.merge import merge as merge_results
    from flakehunt.report.load import load

    out = Outputs(json_path, junit_out, html_path, markdown, github_mode)
    known = gate.find_known(known_flakes, Path.cwd())
    result = merge_results([load(p) for p in results], names=list(results))
    finish(ctx, result, out, fail_on, known, history_path, record=not no_history)


@cli.command()
@click.argument("result", type=click.Path(dir_okay=False))
@output_options
def report(result, json_path, junit_out, html_path, markdown, github_mode) -> None:
    """Re-render a saved --json RESULT: console, and any of the report files."""
    from flakehunt.report.load import load

    publish(load(result), Outputs(json_path, junit_out, html_path, markdown, github_mode))


@cli.command()
@click.argument("test", required=False)
@click.option("--history", "history_path", type=click.Path(dir_okay=False),
              default=".flakehunt/history.db", show_default=True, help="The history file.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="Rows per table.")
def history(test, history_path, limit) -> None:
    """Flake rate over time, per test and per commit (of TEST: an id or part of one)."""
    from rich.table import Table
    from rich.text import Text

    from flakehunt import history as hist

    path = Path(history_path)
    out = make_console()

    def table(title: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        t = Table(title=Text(title))
        for col in columns:
            t.add_column(col, overflow="fold")
        for row in rows:
            t.add_row(*(Text(str(c) if c is not None else "-") for c in row))
        out.print(t)

    def pct(bad: int, ran: int) -> str:
        return f"{bad}/{ran} ({bad / ran:.0%})" if ran else "-"

    if test:
        hunts = hist.per_hunt(path, test, limit)
        if not hunts:
            raise UsageError(f"no test matching {test!r} in {path}")
        table(f"{test} over time", ("recorded", "commit", "test", "verdict", "failed", "category"),
              [(w, c[:10], n, v, pct(b, r), cat) for w, c, n, v, b, r, cat in hunts])
    else:
        rows = hist.per_test(path, None, limit)
        table("tests ever flaky or failing", ("test", "hunts", "flaky in", "failed", "last"),
              [(r.key, r.hunts, r.flaky_in, pct(r.bad, r.runs), r.last) for r in rows])
    commits = hist.per_commit(path, test, limit)
    table("per commit", ("commit", "branch", "hunts", "flaky tests", "failed", "last"),
          [(r.key[:10], r.branch, r.hunts, r.flaky_in, pct(r.bad, r.runs), r.last)
           for r in commits])


@cli.command("profiles")
def list_profiles() -> None:
    """List the CPU profiles and whether they work on this machine."""
    from flakehunt.profiles import PROFILES

    out = make_console(soft_wrap=True)
    for p in PROFILES.values():
        a = p.availability()
        state = f"available via {a.mechanism}" if a.available else f"unavailable: {a.why}"
        out.print(f"{p.name:14} {state:40} {p.description}")


def write_output(path: str, text: str) -> None:
    if path == "-":
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except OSError as exc:  # a full disk, a closed pipe
            raise ReportWriteError(f"cannot write the report to stdout: "
                                   f"{exc.strerror or exc}") from None
        return
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ReportWriteError(f"cannot write {path}: {exc.strerror or exc}") from None


class ReportWriteError(FlakehuntError):
    exit_code = ExitCode.SUITE


def on_sigterm(signum, frame) -> None:
    raise Interrupted(ExitCode.TERMINATED)


def main(argv: list[str] | None = None) -> None:
    """Entry point: every exception becomes a one-line message and an exit code."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    err = make_console(stderr=True, soft_wrap=True)
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        code = cli.main(args=argv, prog_name="flakehunt", standalone_mode=False)
        code = code or 0
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.UsageError as exc:
        err.print(f"flakehunt: error: {exc.format_message()}")
        code = ExitCode.USAGE
    except click.exceptions.Abort:
        err.print("flakehunt: interrupted")
        code = ExitCode.INTERRUPTED
    except FlakehuntError as exc:
        with github.guard(err.file, enabled=github.active()):  # the message may quote tests
            err.print(f"flakehunt: error: {exc}")
        code = exc.exit_code
    except KeyboardInterrupt:
        err.print("flakehunt: interrupted")
        code = ExitCode.INTERRUPTED
    except Interrupted as exc:
        err.print("flakehunt: terminated")
        code = exc.code
    except Exception as exc:  # noqa: BLE001 - the one place internal errors are turned into 3
        if debug:
            traceback.print_exc()
        err.print(f"flakehunt: internal error: {type(exc).__name__}: {exc}")
        err.print(f"This is a bug in flakehunt: rerun with --debug and report it at {ISSUES_URL}")
        code = ExitCode.INTERNAL
    finally:
        signal.signal(signal.SIGTERM, previous)
    sys.exit(int(code))
