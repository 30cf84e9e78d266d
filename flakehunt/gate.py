"""The CI gate: does this hunt fail the build? ``--fail-on`` and the known-flakes file.

The known-flakes file is committed with the code (TOML, one ``[[flake]]`` per
quarantined test)::

    [[flake]]
    test = "tests/test_ws.py::test_reconnect"
    owner = "@alice"
    reason = "loop-closed in the manager fixture, issue #123"
    expires = 2025-09-30            # a TOML date; after it the quarantine is over
    max_failure_rate = 0.3          # optional: worse than this fails the gate again

``--fail-on flaky`` fails on any flaky test, ``new`` only on a flaky test
that is not quarantined (or whose quarantine expired) or that got worse than
its ``max_failure_rate``, ``never`` reports only. Worse means the lower end
of the 95% confidence interval of the measured rate is above the ceiling, so
the gate does not itself flake on sampling noise. Only flaky tests are gated:
a test that never passes is the plain test job's business.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from flakehunt.errors import UsageError
from flakehunt.model import Finding, GateResult, HuntResult, KnownFlake, Verdict
from flakehunt.stats import Z95, wilson

POLICIES = ("flaky", "new", "never")
DEFAULT_FILE = "known-flakes.toml"


def load_known(path: Path) -> dict[str, KnownFlake]:
    """The known-flakes file; every entry needs test, owner, reason and expires."""
    from flakehunt.config import read_toml

    data = read_toml(path, "known-flakes file")
    unknown = set(data) - {"flake"}
    if unknown:
        raise UsageError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; "
                         "entries are [[flake]] tables")
    known: dict[str, KnownFlake] = {}
    for i, entry in enumerate(data.get("flake", []), 1):
        where = f"{path}: [[flake]] #{i}"
        if not isinstance(entry, dict):
            raise UsageError(f"{where} is not a table")
        missing = [k for k in ("test", "owner", "reason", "expires") if not entry.get(k)]
        if missing:
            raise UsageError(f"{where} lacks {', '.join(missing)} "
                             "(every quarantine has a test, an owner, a reason and an expiry)")
        extra = set(entry) - {"test", "owner", "reason", "expires", "max_failure_rate"}
        if extra:
            raise UsageError(f"{where}: unknown key(s) {', '.join(sorted(extra))}")
        expires = entry["expires"]
        if isinstance(expires, str):
            try:
                expires = dt.date.fromisoformat(expires)
            except ValueError:
                raise UsageError(f"{where}: expires {expires!r} is not a date "
                                 "(YYYY-MM-DD)") from None
        if isinstance(expires, dt.datetime):
            expires = expires.date()
        if not isinstance(expires, dt.date):
            raise UsageError(f"{where}: expires must be a date (YYYY-MM-DD)")
        ceiling = entry.get("max_failure_rate")
        if ceiling is not None and not (isinstance(ceiling, (int, float)) and 0 <= ceiling <= 1):
            raise UsageError(f"{where}: max_failure_rate must be a number from 0 to 1")
        if entry["test"] in known:
            raise UsageError(f"{where}: {entry['test']} is quarantined twice")
        known[entry["test"]] = KnownFlake(str(entry["test"]), str(entry["owner"]),
                                          str(entry["reason"]), expires,
                                          None if ceiling is None else float(ceiling))
    return known


def wilson_low(bad: int, n: int, z: float = Z95) -> float:
    """Lower end of the Wilson score interval for bad/n."""
    return 0.0 if n == 0 else wilson(bad, n, z)[0]


def why_blocking(f: Finding, known: KnownFlake | None, today: dt.date) -> str | None:
    if known is None:
        return "new"
    if known.expires < today:
        return f"quarantine expired {known.expires.isoformat()}"
    n = f.runs - f.skipped
    if known.max_failure_rate is not None and wilson_low(f.bad, n) > known.max_failure_rate:
        return (f"worse: failed {f.bad}/{n}, above the quarantined max_failure_rate "
                f"{known.max_failure_rate:g}")
    return None


def evaluate(result: HuntResult, fail_on: str, known: dict[str, KnownFlake],
             today: dt.date | None = None) -> GateResult:
    if fail_on not in POLICIES:
        raise UsageError(f"--fail-on takes one of {', '.join(POLICIES)}, not {fail_on!r}")
    today = today or dt.date.today()
    blocking: dict[str, str] = {}
    quarantined: list[KnownFlake] = []
    for f in result.flaky:
        why = why_blocking(f, known.get(f.nodeid), today)
        if why is None:
            quarantined.append(known[f.nodeid])
        if fail_on == "flaky":
            blocking[f.nodeid] = why or "quarantined, but --fail-on flaky"
        elif fail_on == "new" and why is not None:
            blocking[f.nodeid] = why
    stale = tuple(f.nodeid for f in result.findings
                  if f.nodeid in known and f.verdict is Verdict.STABLE)
    return GateResult(fail_on, blocking, tuple(quarantined), stale)


def find_known(path: str | None, cwd: Path) -> dict[str, KnownFlake]:
    """``--known-flakes PATH`` (must exist), else ./known-flakes.toml if there."""
    if path:
        p = Path(path)
        if not p.is_file():
            raise UsageError(f"known-flakes file not found: {path}")
        return load_known(p)
    default = cwd / DEFAULT_FILE
    return load_known(default) if default.is_file() else {}
