from __future__ import annotations

import json
from pathlib import Path

from helpers import DATA

from flakehunt.events import read_events


def write(path: Path, records: list, tail: str = "") -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail, encoding="utf-8")


def session(worker: str) -> dict:
    return {"e": "session", "worker": worker, "pid": 1, "order": "hash:3", "random_seed": 7,
            "cpus": {"requested": None}}


def start(worker: str, pos: int, nodeid: str) -> dict:
    return {"e": "start", "id": nodeid, "w": worker, "pos": pos, "t": 1.0}


def end(worker: str, pos: int, nodeid: str, outcome: str = "passed") -> dict:
    return {"e": "end", "id": nodeid, "nodeid": nodeid, "w": worker, "pos": pos,
            "outcome": outcome, "phase": None, "dur": 0.1, "failures": []}


def test_complete_run(tmp_path):
    write(tmp_path / "events-main.jsonl", [
        session("main"), start("main", 1, "a.py::t1"), end("main", 1, "a.py::t1"),
        start("main", 2, "a.py::t2"), end("main", 2, "a.py::t2", "failed"),
        {"e": "finish", "t": 2.0}])
    ev = read_events(tmp_path)
    assert set(ev.ended) == {("main", 1), ("main", 2)}
    assert ev.ended[("main", 2)]["outcome"] == "failed"
    assert ev.unfinished == {}
    assert ev.sessions["main"]["order"] == "hash:3"
    assert ev.finished == {"main"}


def test_cut_last_line_is_ignored_and_the_started_test_is_unfinished(tmp_path):
    cut = json.dumps(end("main", 2, "a.py::t2"))[:25]  # the process died mid-write
    write(tmp_path / "events-main.jsonl", [
        session("main"), start("main", 1, "a.py::t1"), end("main", 1, "a.py::t1"),
        start("main", 2, "a.py::t2")], tail=cut)
    ev = read_events(tmp_path)
    assert set(ev.ended) == {("main", 1)}
    assert ev.unfinished["main"]["id"] == "a.py::t2"
    assert ev.unfinished["main"]["pos"] == 2
    assert ev.finished == set()


def test_unfinished_start_recorded_per_worker(tmp_path):
    write(tmp_path / "events-gw0.jsonl", [
        session("gw0"), start("gw0", 1, "a.py::t1"), end("gw0", 1, "a.py::t1"),
        {"e": "finish", "t": 3.0}])
    write(tmp_path / "events-gw1.jsonl", [
        session("gw1"), start("gw1", 1, "a.py::t2"), end("gw1", 1, "a.py::t2"),
        start("gw1", 2, "a.py::t3")])
    write(tmp_path / "events-gw2.jsonl", [session("gw2"), start("gw2", 1, "a.py::t4")])
    write(tmp_path / "events-main.jsonl", [session("main"), {"e": "finish", "t": 4.0}])
    ev = read_events(tmp_path)
    assert {w: r["id"] for w, r in ev.unfinished.items()} == {"gw1": "a.py::t3",
                                                             "gw2": "a.py::t4"}
    assert set(ev.sessions) == {"gw0", "gw1", "gw2", "main"}
    assert ev.finished == {"gw0", "main"}
    assert set(ev.ended) == {("gw0", 1), ("gw1", 1)}


def test_same_position_on_two_workers_kept_apart(tmp_path):
    write(tmp_path / "events-gw0.jsonl", [start("gw0", 1, "a.py::x"), end("gw0", 1, "a.py::x")])
    write(tmp_path / "events-gw1.jsonl", [start("gw1", 1, "a.py::y"), end("gw1", 1, "a.py::y")])
    ev = read_events(tmp_path)
    assert ev.ended[("gw0", 1)]["id"] == "a.py::x"
    assert ev.ended[("gw1", 1)]["id"] == "a.py::y"


def test_garbage_lines_and_other_files_are_ignored(tmp_path):
    (tmp_path / "events-main.jsonl").write_bytes(
        b"\xff\xfe not json\n" + (json.dumps(start("main", 1, "a.py::t")) + "\n").encode()
        + b"{\"e\": \n" + (json.dumps(end("main", 1, "a.py::t")) + "\n").encode())
    write(tmp_path / "collected.json", [{"e": "start", "id": "x", "w": "zz", "pos": 1}])
    ev = read_events(tmp_path)
    assert set(ev.ended) == {("main", 1)}
    assert ev.unfinished == {}


def test_empty_folder(tmp_path):
    ev = read_events(tmp_path)
    assert (ev.ended, ev.unfinished, ev.sessions, ev.finished) == ({}, {}, {}, set())


def test_captured_xdist_crash_events():
    ev = read_events(DATA / "runs" / "xdist-crash")
    [(worker, rec)] = ev.unfinished.items()
    assert rec["id"] == "test_xdist_crash.py::test_die"
    assert worker not in ev.finished  # the crashed worker never finished
    assert "main" in ev.finished
    assert {r["id"] for r in ev.ended.values()} == {"test_xdist_crash.py::test_ok",
                                                    "test_xdist_crash.py::test_ok2"}
