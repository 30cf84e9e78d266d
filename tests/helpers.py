"""Helpers shared by flakehunt's own tests (imported as ``helpers``).

Nothing here is random or timed: flaky behaviour in the suites the tests build
comes from counter files guarded by ``flock`` (a test fails on exactly its Nth
execution, whatever the concurrency) or from module-level state that another
test pollutes.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from flakehunt.model import Outcome, RunResult, RunSpec, TestResult

DATA = Path(__file__).parent / "data"

#: pytest.ini for every suite a test builds: pins the rootdir and silences
#: pytest-asyncio's configuration warning in the children's output
SUITE_INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"


def counter_source(counter: Path, fail_on: tuple[int, ...], action: str) -> str:
    """Python lines that bump ``counter`` under an exclusive lock and run ``action``
    when this execution's number is in ``fail_on``. Meant for a test body."""
    return textwrap.dedent(f"""\
        import fcntl as _fcntl, os as _os
        with open({str(counter)!r}, "a+") as _fh:
            _fcntl.flock(_fh, _fcntl.LOCK_EX)
            _fh.seek(0)
            _n = len(_fh.read()) + 1
            _fh.write("x")
            _fh.flush()
        if _n in {tuple(fail_on)!r}:
            {action}
        """)


def indent(text: str, by: int = 4) -> str:
    return textwrap.indent(text, " " * by)


def make_suite(pytester: pytest.Pytester, **files: str) -> Path:
    """Write an ini plus ``name=source`` test modules into pytester.path."""
    pytester.makeini(SUITE_INI)
    for name, source in files.items():
        pytester.makepyfile(**{name: textwrap.dedent(source)})
    return pytester.path


def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    """Call flakehunt.cli.main and return (exit code, stdout, stderr)."""
    from flakehunt.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    code = exc.value.code
    return (code if isinstance(code, int) else (0 if code is None else 1)), out, err


# -- synthetic results ---------------------------------------------------------
def result(nodeid: str, outcome: Outcome | str, worker: str = "main",
           position: int | None = None) -> TestResult:
    return TestResult(nodeid, Outcome(outcome), worker, position)


def run_result(index: int, results: list[TestResult], order: str = "declared",
               workers: int = 0, profile: str = "none", status: str = "ok") -> RunResult:
    spec = RunSpec(index=index, order=order, workers=workers, profile=profile)
    return RunResult(spec, status, 0, 1.0, tuple(results), f"/tmp/run-{index:04d}")
