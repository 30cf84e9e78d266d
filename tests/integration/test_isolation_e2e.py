"""flakehunt's own concurrent runs must not collide: a fixed port, a file in the tree.

Two tests bind the same fixed port (and hold it a while); run side by side on one
network, two runs of the suite would fail each other. The hunt runs them in network
namespaces of their own where Linux allows it, else one at a time, and says which.
"""

from __future__ import annotations

import json
import socket
import textwrap

import pytest
from helpers import run_main

from flakehunt import isolation

PORT_TEST = """
    import socket, time

    def hold_port():
        s = socket.socket()
        s.bind(("127.0.0.1", {port}))
        s.listen()
        time.sleep(0.2)
        s.close()

    def test_a():
        hold_port()

    def test_b():
        hold_port()
"""

TREE_TEST = """
    from pathlib import Path

    def test_writes_in_its_tree():
        Path(__file__).with_name("out.txt").write_text("x")

    def test_other():
        pass
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hunt_suite(pytester, capsys, source: str) -> tuple[int, dict, str]:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_suite=textwrap.dedent(source))
    report = pytester.path / "report.json"
    code, out, err = run_main(["run", "--runs", "4", "--min-rate", "0", "--jobs", "2",
                               "--seed", "3", "--no-progress", "--no-classify",
                               "--profiles", "none", "--workers", "0", "--no-history",
                               "--json", str(report)], capsys)
    return code, json.loads(report.read_text()), out + err


def isolation_of_runs(data: dict) -> list[str]:
    return [run["profile_applied"]["isolation"] for run in data["runs"]]


@pytest.mark.skipif(isolation.netns_unavailable() is not None,
                    reason="no network namespaces here")
def test_fixed_port_runs_in_namespaces_of_their_own(pytester, capsys):
    code, data, text = hunt_suite(pytester, capsys, PORT_TEST.format(port=free_port()))
    assert code == 0, text
    assert [t["verdict"] for t in data["tests"]] == ["stable", "stable"]
    assert data["settings"]["isolation"]["mode"] == "netns"
    assert "own network namespace" in data["settings"]["isolation"]["why"]
    runs = isolation_of_runs(data)
    assert runs.count("alone") == 1 and runs.count("netns") == 3, runs  # the first, alone
    assert not data["warnings"]


def test_fixed_port_without_namespaces_runs_one_at_a_time(pytester, capsys, monkeypatch):
    monkeypatch.setattr(isolation, "netns_unavailable", lambda: "unshare: not permitted")
    code, data, text = hunt_suite(pytester, capsys, PORT_TEST.format(port=free_port()))
    assert code == 0, text
    assert [t["verdict"] for t in data["tests"]] == ["stable", "stable"]
    assert data["settings"]["isolation"]["mode"] == "serial"
    assert set(isolation_of_runs(data)) == {"alone"}
    [warning] = data["warnings"]
    assert "runs went one at a time" in warning and "no network namespaces here" in warning
    assert "unshare: not permitted" in warning and "test_suite.py::test_a" in warning
    assert "runs went one at a time" in text  # the console says so too


def test_suite_writing_in_its_tree_runs_one_at_a_time(pytester, capsys):
    code, data, text = hunt_suite(pytester, capsys, TREE_TEST)
    assert code == 0, text
    assert data["settings"]["isolation"]["mode"] == "serial"
    assert data["settings"]["isolation"]["seen"]["tree"] == ["out.txt"]
    assert set(isolation_of_runs(data)) == {"alone"}
    assert "writes in its tree (out.txt by test_suite.py::test_writes_in_its_tree)" in (
        data["warnings"][0])


def test_suite_sharing_nothing_runs_side_by_side(pytester, capsys):
    code, data, text = hunt_suite(pytester, capsys, TREE_TEST.replace(
        'Path(__file__).with_name("out.txt")', 'Path(__import__("tempfile").mkdtemp()) / "o"'))
    assert code == 0, text
    assert data["settings"]["isolation"] == {"mode": "shared", "seen": {}}
    runs = isolation_of_runs(data)
    assert runs.count("alone") == 1 and runs.count("shared") == 3, runs
    assert not data["warnings"]
