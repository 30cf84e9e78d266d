"""Exit codes and the exceptions that map onto them (one place: cli.main)."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """What `flakehunt` exits with. Documented in the README; never renumber."""

    #: the hunt finished and found no flaky test
    OK = 0
    #: the hunt finished and found at least one flaky test
    FLAKY = 1
    #: bad command line or option value
    USAGE = 2
    #: a bug in flakehunt itself
    INTERNAL = 3
    #: the suite cannot be collected or run (collection error, missing interpreter or plugin)
    SUITE = 4
    #: the selection collected no tests
    NO_TESTS = 5
    #: interrupted by Ctrl-C (SIGINT)
    INTERRUPTED = 130
    #: terminated by SIGTERM
    TERMINATED = 143


class FlakehuntError(Exception):
    """An error the user can act on; its message is shown as one line."""

    exit_code = ExitCode.INTERNAL


class UsageError(FlakehuntError):
    exit_code = ExitCode.USAGE


class SuiteError(FlakehuntError):
    exit_code = ExitCode.SUITE


class NoTestsError(FlakehuntError):
    exit_code = ExitCode.NO_TESTS


class Interrupted(BaseException):
    """Raised in the main thread on SIGTERM, so children are cleaned up on the way out;
    a BaseException, like KeyboardInterrupt, so no ``except Exception`` swallows it."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code
