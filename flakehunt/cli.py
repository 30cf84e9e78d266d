"""The command line: a thin click layer over :mod:`flakehunt.app`.

Options become typed settings (:class:`~flakehunt.settings.HuntSettings`,
:class:`~flakehunt.app.Outputs`, :class:`~flakehunt.app.GateSettings`); click
only parses values, :func:`flakehunt.settings.validate` decides what a hunt
accepts. Exceptions become exit codes in one place, :func:`main`. Data goes to
stdout or a file; progress and chatter to stderr.
"""

from __future__ import annotations

import re
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import click

from flakehunt import __version__, app, config, gate
from flakehunt.errors import ExitCode, FlakehuntError, Interrupted, UsageError
from flakehunt.profiles import DEFAULT as PROFILE_DEFAULT
from flakehunt.report import github
from flakehunt.report.console import make_console
from flakehunt.settings import HuntSettings, validate

ISSUES_URL = "https://github.com/flakehunt/flakehunt/issues"

F = TypeVar("F", bound=Callable[..., Any])


# -- values: parsed here, checked by settings.validate -----------------------------------
def int_list(ctx: click.Context, param: click.Parameter,
             value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        return tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of numbers") from None


def name_list(ctx: click.Context, param: click.Parameter,
              value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(v.strip() for v in value.split(",") if v.strip())


def duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
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


def shard(ctx: click.Context, param: click.Parameter,
          value: str | None) -> tuple[int, int] | None:
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
def output_options(f: F) -> F:
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


def gate_options(f: F) -> F:
    options = [
        click.option("--fail-on", type=click.Choice(gate.POLICIES), default="flaky",
                     show_default=True,
                     help="Exit 1 on any flaky test, only on new or worsened ones (not "
                          "quarantined in the known-flakes file), or never."),
        click.option("--known-flakes", type=click.Path(dir_okay=False),
                     help=f"Quarantine file (default: ./{gate.DEFAULT_FILE} if present)."),
        click.option("--history", "history_path", type=click.Path(dir_okay=False),
                     default=app.DEFAULT_HISTORY, show_default=True,
                     help="SQLite file every hunt is recorded in."),
        click.option("--no-history", is_flag=True, help="Do not record this hunt."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


# -- options -> settings -------------------------------------------------------------------
def outputs(options: dict[str, Any]) -> app.Outputs:
    """The options of :func:`output_options`."""
    return app.Outputs(json_path=options["json_path"], junit_out=options["junit_out"],
                       html_path=options["html_path"], markdown=options["markdown"],
                       github_mode=options["github_mode"])


def gate_settings(options: dict[str, Any]) -> app.GateSettings:
    """The options of :func:`gate_options`."""
    return app.GateSettings(fail_on=options["fail_on"], known_flakes=options["known_flakes"],
                            history=Path(options["history_path"]),
                            record=not options["no_history"])


def hunt_settings(ctx: click.Context, selection: tuple[str, ...],
                  options: dict[str, Any]) -> HuntSettings:
    """`run`'s hunt options, checked: a value the hunt refuses is a bad option (exit 2)."""
    settings = HuntSettings(
        selection=tuple(selection), pytest_args=ctx.meta.get("pytest_args", ()),
        runs=options["runs"], seed=options["seed"], workers=options["workers"],
        profiles=options["profiles"], dist=options["dist"], jobs=options["jobs"],
        python=options["python"], run_timeout=options["run_timeout"],
        workdir=options["workdir"], classify=not options["no_classify"],
        evidence=not options["no_evidence"], budget=options["budget"],
        shard=options["shard_spec"], min_rate=options["min_rate"], start=options["start"])
    try:
        validate(settings)
    except UsageError as exc:
        raise click.UsageError(str(exc), ctx) from None
    return settings


# -- the commands ------------------------------------------------------------------------
@cli.command(cls=RunCommand)
@click.argument("selection", nargs=-1)
@click.option("--runs", default=50, show_default=True, type=click.IntRange(min=1),
              help="Sweep runs, each a fresh pytest process: 50 rule out a 6% failure rate "
                   "at 95% (the report states what the hunt ruled out).")
@click.option("--min-rate", type=click.FloatRange(min=0, max=1, max_open=True), default=0.0,
              show_default=True,
              help="Opt-in early stop: end the sweep once every test is flaky or gave one "
                   "outcome often enough to rule out failing (or passing) at this rate, at "
                   "95% confidence (0.2: 14 runs, 0.1: 29, 0.05: 59). The default 0 runs "
                   "every planned run: --runs N gives the detection power of N runs.")
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
@click.option("--start", type=click.Choice(["warm", "fresh"]), default="warm", show_default=True,
              help="How runs start: forked by warm parents that imported pytest, its plugins "
                   "and the suite's installed dependencies once (falling back to a fresh "
                   "process where that is not safe), or every run a fresh interpreter.")
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
@click.option("--patch-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Make a patch per root cause, verify each in a scratch copy of the suite "
                   "(extra runs), write NN-name.patch files and README.md here.")
@click.option("--base", help="Branch or commit --changed compares with (default: the pull "
                             "request's base, else origin's default branch).")
@output_options
@gate_options
@click.pass_context
def run(ctx: click.Context, selection: tuple[str, ...], **options: Any) -> None:
    """Run SELECTION (paths or test ids) many times and report flaky tests.

    Arguments after `--` are passed to every pytest run.
    """
    settings = hunt_settings(ctx, selection, options)
    request = app.RunRequest(settings=settings, outputs=outputs(options),
                             gate=gate_settings(options), changed=options["changed"],
                             base=options["base"], progress=not options["no_progress"],
                             patch_dir=options["patch_dir"])
    ctx.exit(app.run(request))


@cli.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(dir_okay=False))
@output_options
@gate_options
@click.pass_context
def merge(ctx: click.Context, results: tuple[str, ...], **options: Any) -> None:
    """Combine the --json results of a sharded hunt (--shard i/n) into one result."""
    ctx.exit(app.merge(results, outputs(options), gate_settings(options)))


@cli.command()
@click.argument("result", type=click.Path(dir_okay=False))
@output_options
def report(result: str, **options: Any) -> None:
    """Re-render a saved --json RESULT: console, and any of the report files."""
    app.report(result, outputs(options))


@cli.command()
@click.argument("result", type=click.Path(dir_okay=False))
@click.option("--apply", "apply_", is_flag=True,
              help="Apply the verified patches to the suite's tree (default: print them).")
@click.option("--force", is_flag=True, help="Use the unverified (proposed) patches too.")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path),
              help="Where to apply them (default: the result's rootdir).")
def fix(result: str, apply_: bool, force: bool, root: Path | None) -> None:
    """Print the patches of a saved --json RESULT made with --patch-dir, or --apply them."""
    app.fix(result, apply_, force, root)


@cli.command()
@click.argument("test", required=False)
@click.option("--history", "history_path", type=click.Path(dir_okay=False),
              default=app.DEFAULT_HISTORY, show_default=True, help="The history file.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="Rows per table.")
def history(test: str | None, history_path: str, limit: int) -> None:
    """Flake rate over time, per test and per commit (of TEST: an id or part of one)."""
    app.show_history(test, Path(history_path), limit)


@cli.command("profiles")
def list_profiles() -> None:
    """List the CPU profiles and whether they work on this machine."""
    app.show_profiles()


# -- exceptions -> exit codes ----------------------------------------------------------------
def on_sigterm(signum: int, frame: FrameType | None) -> None:
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
