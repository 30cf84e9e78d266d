"""The pair screen, hunted for real: a victim that fails only right after its polluter
(a test between them puts the state back), in a sweep whose two orders never put them
side by side. Only the screen's rows can find it."""

from __future__ import annotations

import json

from helpers import run_main

TESTS = """
import shared


def test_a_polluter():
    shared.STATE = "replaced"          # not a list any more


def test_b_cleaner():
    shared.STATE = [0]


def test_c_victim():
    shared.STATE.append(1)             # fails right after the polluter
    assert len(shared.STATE) >= 1
"""


def test_screen_finds_the_victim_the_sweep_orders_miss(tmp_path, capsys, monkeypatch):
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "shared.py").write_text("STATE = []\n")
    (tmp_path / "test_order.py").write_text(TESTS)
    out = tmp_path / "r.json"
    monkeypatch.chdir(tmp_path)
    # two runs: declared (a, b, c) and reversed (c, b, a); the victim passes in both
    code, stdout, _ = run_main(["run", "--runs", "2", "--seed", "1", "--workers", "0",
                                "--profiles", "none", "--no-progress", "--no-history",
                                "--json", str(out)], capsys)
    report = json.loads(out.read_text())
    tests = {t["nodeid"].split("::")[-1]: t for t in report["tests"]}
    victim = tests["test_c_victim"]
    assert code == 1, stdout
    assert victim["verdict"] == "flaky"
    assert victim["breakdown"]["order"]["pairs"]["bad"] >= 1
    assert victim["breakdown"]["order"]["declared"]["bad"] == 0
    assert victim["breakdown"]["order"]["reverse"]["bad"] == 0
    assert victim["category"] == "state-leak"
    assert victim["polluter"] == ["test_order.py::test_a_polluter"]
    assert tests["test_a_polluter"]["verdict"] == "stable"
    assert report["settings"]["screen"]["groups"] == 1
    assert 1 <= report["settings"]["screen"]["runs"] <= 4
    assert "pair-screen runs" in stdout
