"""The command line: click's CliRunner for parsing, flakehunt.cli.main for exit codes."""

from __future__ import annotations

import signal
import sys

import pytest
from click.testing import CliRunner
from helpers import make_suite, run_main

import flakehunt
from flakehunt import app
from flakehunt.cli import cli
from flakehunt.errors import ExitCode, NoTestsError, SuiteError
from flakehunt.hunt import Interrupted
from flakehunt.model import Finding, HuntResult, Verdict


@pytest.fixture(autouse=True)
def fixed_width(monkeypatch):
    """rich wraps at the terminal width; pin it so line counts do not depend on the tty."""
    monkeypatch.setenv("COLUMNS", "80")


@pytest.fixture
def suite_dir(pytester, monkeypatch):
    make_suite(pytester)
    monkeypatch.chdir(pytester.path)
    return pytester.path


def no_traceback(*texts: str) -> bool:
    return not any("Traceback (most recent call last)" in t for t in texts)


# -- CliRunner -------------------------------------------------------------------------
def test_version_with_clirunner():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"flakehunt, version {flakehunt.__version__}"


def test_help_lists_the_commands_and_options():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "run" in result.output and "profiles" in result.output
    result = CliRunner().invoke(cli, ["run", "-h"])
    assert result.exit_code == 0
    for option in ("--runs", "--seed", "--workers", "--profiles", "--json", "--no-classify"):
        assert option in result.output


def test_profiles_with_clirunner():
    result = CliRunner().invoke(cli, ["profiles"])
    assert result.exit_code == 0
    names = [line.split()[0] for line in result.output.splitlines()
             if line and not line.startswith(" ")]
    assert names[:2] == ["none", "single-core"]
    assert "available via none" in result.output


@pytest.mark.parametrize("args, needle", [
    (["run", "--runs", "0", "x"], "--runs"),
    (["run", "--runs", "many", "x"], "--runs"),
    (["run", "--workers", "x", "x"], "--workers"),
    (["run", "--workers", "0,-2", "x"], "--workers"),
    (["run", "--workers", ",", "x"], "--workers"),
    (["run", "--profiles", ",", "x"], "--profiles"),
    (["run", "--run-timeout", "0", "x"], "--run-timeout"),
    (["run", "--jobs", "-1", "x"], "--jobs"),
    (["run", "--no-such-option"], "--no-such-option"),
])
def test_bad_options_exit_2_with_clirunner(args, needle):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert needle in result.output


# -- main(): exit codes --------------------------------------------------------------------
def test_runs_0_is_one_line_exit_2(capsys):
    code, out, err = run_main(["run", "--runs", "0", "x"], capsys)
    assert code == ExitCode.USAGE == 2
    assert err.strip().splitlines() == [
        "flakehunt: error: Invalid value for '--runs': 0 is not in the range x>=1."]
    assert out == ""


def test_bad_workers_exit_2(capsys):
    code, out, err = run_main(["run", "--workers", "x", "x"], capsys)
    assert code == 2
    assert err.startswith("flakehunt: error:") and "--workers" in err
    assert no_traceback(out, err)


def test_long_error_message_stays_on_one_line(capsys):
    code, out, err = run_main(["run", "--workers", "x", "x"], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1


def test_unknown_profile_exit_2(capsys):
    code, out, err = run_main(["run", "--profiles", "none,turbo", "x"], capsys)
    assert code == 2
    assert "unknown profile 'turbo'" in err
    assert "single-core" in err  # names the known ones
    assert no_traceback(out, err)


def test_nonexistent_path_exit_4(suite_dir, capsys):
    code, out, err = run_main(["run", "no_such_tests.py", "--runs", "1", "--no-progress"],
                              capsys)
    assert code == ExitCode.SUITE == 4
    assert err.startswith("flakehunt: error:")
    assert "no_such_tests.py" in err and "not found" in err
    assert len(err.strip().splitlines()) <= 6
    assert no_traceback(out, err)


def test_empty_file_exit_5(suite_dir, capsys):
    (suite_dir / "test_empty_sample.py").write_text("# no tests here\n")
    code, out, err = run_main(["run", "test_empty_sample.py", "--runs", "1", "--no-progress"],
                              capsys)
    assert code == ExitCode.NO_TESTS == 5
    assert "no tests collected" in err
    assert no_traceback(out, err)


def test_syntax_error_exit_4(suite_dir, capsys):
    (suite_dir / "test_syntax_sample.py").write_text("def test_x(:\n    pass\n")
    code, out, err = run_main(["run", "test_syntax_sample.py", "--runs", "1", "--no-progress"],
                              capsys)
    assert code == 4
    assert err.startswith("flakehunt: error: pytest could not collect")
    assert "SyntaxError" in err
    assert no_traceback(out, err)


def test_missing_python_exit_4(suite_dir, capsys):
    code, out, err = run_main(["run", "--python", "/nonexistent/python", "--runs", "1",
                               "--no-progress"], capsys)
    assert code == 4
    assert err.strip() == "flakehunt: error: interpreter not found: /nonexistent/python"


def test_version_through_main(capsys):
    code, out, err = run_main(["--version"], capsys)
    assert code == 0
    assert out.strip() == f"flakehunt, version {flakehunt.__version__}"


def test_profiles_through_main(capsys):
    code, out, err = run_main(["profiles"], capsys)
    assert code == 0
    assert out.splitlines()[0].split()[0] == "none"
    assert "single-core" in out


# -- main(): exceptions and results -> exit codes, with a fake hunt -------------------------
def finding(verdict: Verdict) -> Finding:
    return Finding("t.py::x", verdict, runs=2, passed=1, failed=1, errored=0, skipped=0)


def fake_result(verdict=Verdict.STABLE, interrupted=0) -> HuntResult:
    return HuntResult(rootdir="/r", selection=(), seed=1, runs=(),
                      findings=(finding(verdict),), interrupted=interrupted)


@pytest.fixture
def fake_hunt(monkeypatch):
    calls = []

    def install(outcome):
        def hunt(settings, progress=None):
            calls.append(settings)
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome

        monkeypatch.setattr(app, "hunt", hunt)
        return calls

    return install


@pytest.mark.parametrize("outcome, code", [
    (fake_result(Verdict.STABLE), 0),
    (fake_result(Verdict.FAILING), 0),
    (fake_result(Verdict.FLAKY), 1),
    (fake_result(Verdict.FLAKY, interrupted=130), 130),
    (fake_result(Verdict.STABLE, interrupted=143), 143),
    (SuiteError("cannot run"), 4),
    (NoTestsError("nothing"), 5),
    (KeyboardInterrupt(), 130),
    (Interrupted(143), 143),
    (RuntimeError("kaboom"), 3),
])
def test_exit_code_mapping(fake_hunt, capsys, outcome, code):
    fake_hunt(outcome)
    got, out, err = run_main(["run", "x.py", "--no-progress"], capsys)
    assert got == code
    assert no_traceback(out, err)


def test_internal_error_message_and_debug_traceback(fake_hunt, capsys):
    fake_hunt(RuntimeError("kaboom"))
    code, out, err = run_main(["run", "x.py"], capsys)
    assert code == 3
    assert "flakehunt: internal error: RuntimeError: kaboom" in err
    assert "--debug" in err
    code, out, err = run_main(["--debug", "run", "x.py"], capsys)
    assert code == 3
    assert "Traceback (most recent call last)" in err


def test_settings_from_the_command_line(fake_hunt, capsys):
    calls = fake_hunt(fake_result())
    code, *_ = run_main(["run", "tests/a.py", "tests/b.py::t", "--runs", "7", "--seed", "3",
                         "--workers", "0, 4", "--profiles", "none", "--jobs", "2",
                         "--run-timeout", "9.5", "--no-classify", "--no-progress",
                         "--", "-k", "not slow", "-x"], capsys)
    assert code == 0
    [s] = calls
    assert s.selection == ("tests/a.py", "tests/b.py::t")
    assert s.pytest_args == ("-k", "not slow", "-x")
    assert (s.runs, s.seed, s.workers, s.profiles, s.jobs) == (7, 3, (0, 4), ("none",), 2)
    assert s.run_timeout == 9.5 and s.classify is False
    assert s.python == sys.executable


def test_json_to_stdout_and_console_report_to_stderr(fake_hunt, capsys):
    import json

    fake_hunt(fake_result(Verdict.FLAKY))
    code, out, err = run_main(["run", "x.py", "--json", "-", "--no-progress"], capsys)
    assert code == 1
    data = json.loads(out)
    assert data["schema"] == 1
    assert [t["verdict"] for t in data["tests"]] == ["flaky"]
    assert "1 flaky in 0 runs (seed 1)" in err


def test_json_write_error_exit_4(fake_hunt, capsys, tmp_path):
    fake_hunt(fake_result())
    code, out, err = run_main(["run", "x.py", "--json", str(tmp_path / "no" / "dir.json"),
                               "--no-progress"], capsys)
    assert code == 4
    assert "cannot write" in err


def test_sigterm_handler_is_restored(fake_hunt, capsys):
    fake_hunt(fake_result())
    before = signal.getsignal(signal.SIGTERM)
    run_main(["run", "x.py"], capsys)
    assert signal.getsignal(signal.SIGTERM) is before


def test_pytest_args_after_double_dash_with_group_options(fake_hunt, capsys):
    calls = fake_hunt(fake_result())
    code, *_ = run_main(["--debug", "run", "x.py", "--", "-k", "y", "--", "z"], capsys)
    assert code == 0
    [s] = calls
    assert s.selection == ("x.py",)
    assert s.pytest_args == ("-k", "y", "--", "z")
