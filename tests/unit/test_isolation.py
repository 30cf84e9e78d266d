"""The isolation policy (flakehunt.isolation) and what the child's watch records
(flakehunt.watch), fed synthetic records and audit events: no process runs."""

from __future__ import annotations

import json
import os
import socket

from flakehunt.isolation import Isolation, read_shared
from flakehunt.scheduler import Limits, Scheduler
from flakehunt.watch import Watch
from flakehunt.wire import SHARED


def rec(kind: str, what: str, test: str = "t.py::test_x") -> dict[str, str]:
    return {"kind": kind, "what": what, "test": test}


def policy(no_netns: str | None = None) -> tuple[Isolation, list[int]]:
    asked: list[int] = []

    def probe() -> str | None:
        asked.append(1)
        return no_netns

    return Isolation(probe), asked


def test_the_first_run_runs_alone_then_runs_share_when_nothing_is_shared():
    iso, asked = policy()
    assert iso.one_at_a_time and iso.label() == "alone"
    iso.update([rec("remote", "pypi.org")])  # the network alone is no collision
    assert not iso.one_at_a_time and iso.label() == "shared"
    assert iso.summary()["mode"] == "shared" and not iso.warnings() and not asked


def test_fixed_ports_get_namespaces_where_available_asked_once():
    iso, asked = policy()
    iso.update([rec("port", "127.0.0.1:8765")])
    iso.update([rec("port", "127.0.0.1:9000")])
    assert iso.label() == "netns" and not iso.one_at_a_time and asked == [1]
    assert "127.0.0.1:8765 by t.py::test_x" in iso.summary()["why"] and not iso.warnings()


def test_fixed_ports_without_namespaces_serialise_and_say_why():
    iso, _ = policy("unshare: Operation not permitted")
    iso.update([rec("port", "127.0.0.1:8765")])
    assert iso.one_at_a_time and iso.label() == "alone"
    [warning] = iso.warnings()
    assert "no network namespaces here (unshare: Operation not permitted)" in warning


def test_ports_and_the_network_serialise_even_with_namespaces():
    iso, _ = policy()
    iso.update([rec("port", "127.0.0.1:8765")])
    iso.update([rec("remote", "10.0.0.5:5432")])  # a later run needed the network
    assert iso.mode == "serial" and "uses the network (10.0.0.5:5432" in iso.warnings()[0]


def test_tree_writes_and_local_services_serialise_for_good():
    iso, _ = policy()
    iso.update([rec("local", "127.0.0.1:5432")])
    assert iso.mode == "serial" and "127.0.0.1:5432" in iso.warnings()[0]
    iso.update([])
    assert iso.mode == "serial"
    iso, _ = policy()
    iso.update([rec("tree", f"out{i}.txt") for i in range(5)])
    assert "out0.txt by t.py::test_x" in iso.why and "and 2 more" in iso.why


def test_read_shared_skips_torn_lines(tmp_path):
    (tmp_path / SHARED).write_text(json.dumps(rec("port", "*:80")) + "\n{\"kind\": \n[]\n")
    assert read_shared(tmp_path) == [rec("port", "*:80")]
    assert read_shared(tmp_path / "missing") == []


def test_scheduler_runs_one_at_a_time_while_the_policy_says_so():
    iso, _ = policy()
    scheduler = Scheduler(launcher=None, read=None, workdir=None, nodeids=(),  # type: ignore[arg-type]
                          limits=Limits(2, 6), needed=None, isolation=iso)
    assert scheduler.max_running() == 1
    iso.update([])
    assert scheduler.max_running() == 6


def watch(tmp_path) -> Watch:
    root = tmp_path / "proj"
    (root / "own").mkdir(parents=True)
    return Watch(str(tmp_path / "out"), str(root), [str(root / "own")])


def records(tmp_path) -> list[tuple[str, str]]:
    return [(r["kind"], r["what"]) for r in read_shared(tmp_path / "out")]


def test_watch_records_writes_in_the_tree_only(tmp_path):
    (tmp_path / "out").mkdir()
    w, root = watch(tmp_path), tmp_path / "proj"
    w.hook("open", (str(root / "data.json"), "w", 0))
    w.hook("open", (str(root / "data.json"), "a", 0))  # once each
    w.hook("open", (str(root / "read.txt"), "r", 0))
    w.hook("open", (str(root / "own" / "x"), "w", 0))  # the run's own folder
    w.hook("open", (str(root / "__pycache__" / "m.pyc"), None, os.O_WRONLY | os.O_CREAT))
    w.hook("open", (str(tmp_path / "elsewhere"), "w", 0))
    w.hook("os.remove", (str(root / "gone.txt"), -1))
    w.hook("open", (3, "w", 0))  # a file descriptor
    w.hook("sqlite3.connect", (":memory:",))
    w.hook("sqlite3.connect", (str(root / "db.sqlite3"),))
    assert records(tmp_path) == [("tree", "data.json"), ("tree", "gone.txt"),
                                 ("tree", "db.sqlite3")]


def test_watch_records_fixed_ports_and_connections_outside_the_process(tmp_path):
    (tmp_path / "out").mkdir()
    w = watch(tmp_path)
    with socket.socket() as server, socket.socket() as client:
        w.hook("socket.bind", (server, ("127.0.0.1", 0)))  # an ephemeral port: no record
        server.bind(("127.0.0.1", 0))
        w.hook("socket.connect", (client, ("127.0.0.1", server.getsockname()[1])))  # ours
        w.hook("socket.bind", (server, ("127.0.0.1", 8765)))
        w.hook("socket.connect", (client, ("127.0.0.1", 5432)))
        w.hook("socket.connect", (client, ("93.184.216.34", 443)))
        w.hook("socket.getaddrinfo", ("localhost", 80, 0, 0, 0))
        w.hook("socket.getaddrinfo", ("example.org", 80, 0, 0, 0))
    assert records(tmp_path) == [("port", "127.0.0.1:8765"), ("local", "127.0.0.1:5432"),
                                 ("remote", "93.184.216.34:443"), ("remote", "example.org")]


def test_watch_never_raises_and_goes_inert(tmp_path):
    w = watch(tmp_path)  # no out folder: writing the record fails, silently
    w.hook("open", (str(tmp_path / "proj" / "x"), "w", 0))
    w.hook("socket.bind", (object(), None))
    w.active = False
    (tmp_path / "out").mkdir()
    w.hook("open", (str(tmp_path / "proj" / "y"), "w", 0))
    assert records(tmp_path) == []
