"""The command line: a thin click layer over flakehunt.hunt.

Exceptions become exit codes in one place, :func:`main`. Data goes to stdout
or a file; progress and chatter to stderr.
"""

from __future__ import annotations

import signal
import sys
import traceback
from pathlib import Path

import click

from flakehunt import __version__
from flakehunt.errors import ExitCode, FlakehuntError
from flakehunt.hunt import HuntSettings, Interrupted, hunt
from flakehunt.profiles import DEFAULT as PROFILE_DEFAULT
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


class RunCommand(click.Command):
    """Everything after ``--`` goes to pytest untouched."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            at = args.index("--")
            args, ctx.meta["pytest_args"] = args[:at], tuple(args[at + 1:])
        return super().parse_args(ctx, args)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="flakehunt")
@click.option("--debug", is_flag=True, help="Show flakehunt's own tracebacks.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Hunt flaky pytest tests and say why."""
    ctx.obj = {"debug": debug}


@cli.command(cls=RunCommand)
@click.argument("selection", nargs=-1)
@click.option("--runs", default=50, show_default=True, type=click.IntRange(min=1),
              help="Sweep runs, each a fresh pytest process.")
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
@click.option("--json", "json_path", type=click.Path(dir_okay=False, allow_dash=True),
              help="Write the machine report here ('-' for stdout).")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Keep every run's XML, events and log in this folder.")
@click.option("--no-classify", is_flag=True, help="Verdicts only: skip the follow-up runs.")
@click.option("--no-evidence", is_flag=True,
              help="Children skip the fixture/loop/state probes (faster, less explained).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.pass_context
def run(ctx: click.Context, selection, runs, seed, workers, profiles, dist, jobs, python,
        run_timeout, json_path, workdir, no_classify, no_evidence, no_progress) -> None:
    """Run SELECTION (paths or test ids) many times and report flaky tests.

    Arguments after `--` are passed to every pytest run.
    """
    settings = HuntSettings(
        selection=tuple(selection), pytest_args=ctx.meta.get("pytest_args", ()), runs=runs,
        seed=seed, workers=workers, profiles=profiles, dist=dist, jobs=jobs, python=python,
        run_timeout=run_timeout, workdir=workdir, classify=not no_classify,
        evidence=not no_evidence)
    stderr = make_console(stderr=True)
    progress = ConsoleProgress(stderr, enabled=not no_progress and stderr.is_terminal)
    try:
        result = hunt(settings, progress)
    finally:
        progress.stop()
    ConsoleReporter(make_console(stderr=json_path == "-")).show(result)
    if json_path:
        from flakehunt.report.json import JsonReporter

        write_output(json_path, JsonReporter().render(result))
    if result.interrupted:
        ctx.exit(result.interrupted)
    ctx.exit(ExitCode.FLAKY if result.flaky else ExitCode.OK)


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
        sys.stdout.write(text)
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
        code = ExitCode.INTERRUPTED
    except FlakehuntError as exc:
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
