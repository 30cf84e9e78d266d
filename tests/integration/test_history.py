"""History: every hunt in SQLite (WAL, versioned schema), `flakehunt history`."""

from __future__ import annotations

import datetime as dt
import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import samples
from helpers import run_main

from flakehunt import history
from flakehunt.model import Verdict


def when(day: int) -> dt.datetime:
    return dt.datetime(2025, 6, day, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def db(tmp_path) -> Path:
    path = tmp_path / ".flakehunt" / "history.db"
    result = samples.result()
    history.record(path, result, commit="a" * 40, branch="main", when=when(1))
    # a later commit where the race got fixed
    fixed = replace(result, findings=tuple(
        replace(f, verdict=Verdict.STABLE, failed=0, errored=0, passed=f.runs)
        if f.nodeid == samples.RACE else f for f in result.findings))
    history.record(path, fixed, commit="b" * 40, branch="fix", when=when(2))
    return path


def test_schema_is_versioned_and_in_wal_mode(db):
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == history.SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT count(*) FROM hunts").fetchone()[0] == 2
    assert conn.execute("SELECT count(*) FROM results").fetchone()[0] == 2 * len(samples.NODEIDS)
    conn.close()


def test_a_newer_schema_is_refused(db):
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {history.SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(history.HistoryError, match="newer than this flakehunt"):
        history.record(db, samples.result())


def test_per_test_per_commit_and_over_time(db):
    rows = {r.key: r for r in history.per_test(db)}
    assert set(rows) == {samples.HOSTILE_ID, samples.RACE, samples.BROKEN}  # ever bad
    race = rows[samples.RACE]
    assert (race.hunts, race.flaky_in, race.bad, race.runs) == (2, 1, 1, 8)
    assert race.rate == 1 / 8
    assert next(iter(rows)) == samples.BROKEN  # worst rate first
    commits = history.per_commit(db)
    assert [(c.key[0], c.branch, c.hunts, c.flaky_in) for c in commits] == [
        ("b", "fix", 1, 1), ("a", "main", 1, 2)]
    over_time = history.per_hunt(db, "test_race")  # part of an id matches
    assert [(w[:10], c[0], v, b, n) for w, c, _, v, b, n, _ in over_time] == [
        ("2025-06-02", "b", "stable", 0, 4), ("2025-06-01", "a", "flaky", 1, 4)]
    assert [c.flaky_in for c in history.per_commit(db, samples.RACE)] == [0, 1]


WRITER = textwrap.dedent("""\
    import sys
    sys.path.insert(0, sys.argv[3])
    import samples
    from pathlib import Path
    from flakehunt import history
    for i in range(int(sys.argv[2])):
        history.record(Path(sys.argv[1]), samples.result(seed=i), commit="c", branch="b")
    """)


def test_two_hunts_at_once(tmp_path):
    """Two processes create, migrate and write the same new file concurrently."""
    path = tmp_path / "h" / "history.db"
    per_process = 15
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(per_process),
                               str(Path(__file__).parents[1])], stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM hunts").fetchone()[0] == 2 * per_process
    assert conn.execute("SELECT count(*) FROM results").fetchone()[0] == (
        2 * per_process * len(samples.NODEIDS))
    conn.close()


def test_history_command(db, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    code, out, err = run_main(["history", "--history", str(db)], capsys)
    assert code == 0, err
    assert "tests ever flaky or failing" in out and "per commit" in out
    assert "tests/test_a.py::TestA::test_race" in out and "1/8 (12%)" in out
    code, out, err = run_main(["history", "test_race", "--history", str(db)], capsys)
    assert code == 0, err
    assert "2025-06-02" in out and "stable" in out and "flaky" in out
    assert "bbbbbbbbbb" in out and "aaaaaaaaaa" in out
    code, out, err = run_main(["history", "nothing_like_it", "--history", str(db)], capsys)
    assert code == 2 and "no test matching" in err
    code, out, err = run_main(["history", "--history", str(db.parent / "none.db")], capsys)
    assert code == 4 and "no history" in err
