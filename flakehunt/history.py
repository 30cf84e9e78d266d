"""Every hunt, recorded: SQLite at ``.flakehunt/history.db``.

WAL mode and a busy timeout let two hunts (two CI jobs on one runner, a hunt
and `flakehunt history`) use the file at once; each hunt is written in one
transaction. The schema is versioned with ``PRAGMA user_version``: migrations
run in order inside an immediate transaction, and a file written by a newer
flakehunt is refused rather than misread.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from flakehunt.errors import ExitCode, FlakehuntError
from flakehunt.git import GitError
from flakehunt.git import git as run_git
from flakehunt.model import HuntResult, Purpose

DEFAULT_PATH = Path(".flakehunt") / "history.db"

#: MIGRATIONS[i] takes the schema from version i to i + 1
MIGRATIONS = (
    """
    CREATE TABLE hunts (
        id INTEGER PRIMARY KEY,
        recorded TEXT NOT NULL,          -- ISO 8601, UTC
        commit_sha TEXT,
        branch TEXT,
        rootdir TEXT NOT NULL,
        seed INTEGER NOT NULL,
        runs INTEGER NOT NULL,           -- sweep runs behind the verdicts
        settings TEXT NOT NULL,          -- JSON
        interrupted INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE results (
        hunt_id INTEGER NOT NULL REFERENCES hunts(id) ON DELETE CASCADE,
        nodeid TEXT NOT NULL,
        verdict TEXT NOT NULL,
        runs INTEGER NOT NULL,           -- runs it ran in (skips included)
        bad INTEGER NOT NULL,            -- failed + errored + crashed
        skipped INTEGER NOT NULL,
        category TEXT,
        fixture TEXT,
        PRIMARY KEY (hunt_id, nodeid)
    );
    CREATE INDEX results_by_test ON results (nodeid);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class HistoryError(FlakehuntError):
    exit_code = ExitCode.SUITE


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating and migrating as needed) the history database."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise HistoryError(f"cannot open history {path}: {exc}") from None
    try:
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA foreign_keys = ON")
        wal(conn)
        migrate(conn, path)
    except sqlite3.Error as exc:
        conn.close()
        raise HistoryError(f"history {path}: {exc}") from None
    return conn


def wal(conn: sqlite3.Connection, tries: int = 100) -> None:
    """Switch to WAL (a property of the file); another connection switching at the same
    moment can make this report busy without waiting, so retry."""
    for _attempt in range(tries):
        try:
            if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal":
                return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
        time.sleep(0.05)
    raise sqlite3.OperationalError("could not switch the database to WAL mode")


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise HistoryError(f"history {path} has schema {version}, newer than this flakehunt "
                           f"knows ({SCHEMA_VERSION}): upgrade flakehunt")
    if version == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]  # another may have won
        for step in range(version, SCHEMA_VERSION):
            for statement in MIGRATIONS[step].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {step + 1}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def git(rootdir: str, *args: str) -> str | None:
    """git's answer about the hunt's folder, or None (no git, not a repository, no answer)."""
    try:
        return run_git(rootdir, *args, timeout=10).strip() or None
    except GitError:
        return None


def record(path: Path, result: HuntResult, commit: str | None = None,
           branch: str | None = None, when: dt.datetime | None = None) -> int:
    """Store one hunt's verdicts; returns its id."""
    commit = commit or git(result.rootdir, "rev-parse", "HEAD")
    branch = branch or git(result.rootdir, "rev-parse", "--abbrev-ref", "HEAD")
    when = when or dt.datetime.now(dt.UTC)
    sweep = sum(1 for r in result.runs if r.spec.purpose is Purpose.SWEEP)
    conn = connect(path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        cur = conn.execute(
            "INSERT INTO hunts (recorded, commit_sha, branch, rootdir, seed, runs, settings,"
            " interrupted) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (when.isoformat(timespec="seconds"), commit, branch, result.rootdir, result.seed,
             sweep, json.dumps(result.settings, default=str), result.interrupted))
        hunt_id = cur.lastrowid
        assert hunt_id is not None
        conn.executemany(
            "INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(hunt_id, f.nodeid, f.verdict.value, f.runs, f.bad, f.skipped, f.category,
              f.suspected_fixture) for f in result.findings])
        conn.execute("COMMIT")
        return hunt_id
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise HistoryError(f"cannot record the hunt in {path}: {exc}") from None
    finally:
        conn.close()


@dataclass(frozen=True)
class Row:
    """One line of a history table: a test (or a commit) with its counts."""

    key: str
    hunts: int
    flaky_in: int
    bad: int
    runs: int
    last: str  # when last recorded
    branch: str | None = None

    @property
    def rate(self) -> float:
        return self.bad / self.runs if self.runs else 0.0


def query(path: Path, sql: str, args: tuple = ()) -> list[tuple]:
    if not path.exists():
        raise HistoryError(f"no history at {path}: it is written by `flakehunt run`")
    conn = connect(path)
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.Error as exc:
        raise HistoryError(f"history {path}: {exc}") from None
    finally:
        conn.close()


def per_test(path: Path, test: str | None = None, limit: int = 50) -> list[Row]:
    """Tests ever flaky or failing (or those matching ``test``), worst rate first."""
    where, args = ("WHERE r.nodeid = ? OR instr(r.nodeid, ?) > 0", (test, test)) if test else (
        "WHERE r.nodeid IN (SELECT nodeid FROM results WHERE verdict IN ('flaky', 'failing'))",
        ())
    rows = query(path, f"""
        SELECT r.nodeid, count(*), sum(r.verdict = 'flaky'), sum(r.bad),
               sum(r.runs - r.skipped), max(h.recorded)
        FROM results r JOIN hunts h ON h.id = r.hunt_id {where}
        GROUP BY r.nodeid ORDER BY 1.0 * sum(r.bad) / max(sum(r.runs - r.skipped), 1) DESC,
                 r.nodeid LIMIT ?""", (*args, limit))
    return [Row(*row) for row in rows]


def per_commit(path: Path, test: str | None = None, limit: int = 20) -> list[Row]:
    """Per commit, newest first: hunts, tests found flaky, failed/ran (of ``test`` if given)."""
    where, args = ("WHERE r.nodeid = ? OR instr(r.nodeid, ?) > 0", (test, test)) if test else (
        "", ())
    rows = query(path, f"""
        SELECT coalesce(h.commit_sha, '-'), count(DISTINCT h.id),
               count(DISTINCT CASE WHEN r.verdict = 'flaky' THEN r.nodeid END),
               sum(r.bad), sum(r.runs - r.skipped), max(h.recorded), max(h.branch)
        FROM results r JOIN hunts h ON h.id = r.hunt_id {where}
        GROUP BY h.commit_sha ORDER BY max(h.recorded) DESC, max(h.id) DESC LIMIT ?""",
                 (*args, limit))
    return [Row(key, hunts, flaky, bad, ran, last, branch)
            for key, hunts, flaky, bad, ran, last, branch in rows]


def per_hunt(path: Path, test: str, limit: int = 50) -> list[tuple]:
    """One test over time, newest first: (recorded, commit, nodeid, verdict, bad, ran, category)."""
    return query(path, """
        SELECT h.recorded, coalesce(h.commit_sha, '-'), r.nodeid, r.verdict, r.bad,
               r.runs - r.skipped, r.category
        FROM results r JOIN hunts h ON h.id = r.hunt_id
        WHERE r.nodeid = ? OR instr(r.nodeid, ?) > 0
        ORDER BY h.recorded DESC, h.id DESC LIMIT ?""", (test, test, limit))
