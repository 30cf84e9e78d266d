"""The warm pool's decisions (flakehunt.pool), with fake parents: which parent serves a
run, when a parent retires and who replaces it, hash seeds, and why a run starts fresh."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from flakehunt.hunt import start_summary
from flakehunt.model import Purpose, RunResult, RunSpec, RunStatus
from flakehunt.plan import derive
from flakehunt.pool import Pool, memo_file
from flakehunt.warm import exit_code


class FakeParent:
    """Quacks like WarmParent; starts ready unless told otherwise."""

    def __init__(self, python: str, cwd: Path, env: dict[str, str], log: Path,
                 preload: list[list[str]], hash_seed: int, lifetime: int = 4) -> None:
        self.hash_seed, self.lifetime, self.preload = hash_seed, lifetime, list(preload)
        self.state, self.why, self.safe = "ready", "", 0
        self.served = self.forks = self.aged = 0
        self.rotating = True
        self.used = 0
        self.alive: set[int] = set()
        self.proc = type("P", (), {"poll": lambda self: 0})()

    @property
    def full(self) -> bool:
        return self.rotating and self.aged >= self.lifetime

    def pump(self) -> None: ...

    def retire(self) -> None:
        self.state = "closed"

    def close(self) -> None:
        self.retire()


def pool(tmp_path: Path, **kw: Any) -> Pool:
    return Pool("python", tmp_path, {}, tmp_path / "warm", seed=7, factory=FakeParent, **kw)


def test_each_parent_serves_its_lifetime_then_a_new_hash_seed_takes_over(tmp_path):
    p = pool(tmp_path, size=2, lifetime=3)
    picked = [p.pick(None)[0] for _ in range(9)]
    seeds = [parent.hash_seed for parent in picked if parent is not None]
    assert len(seeds) == 9
    # two parents at a time, fewest served first; a full one is replaced at once
    assert seeds[:3] == [derive(7, "hash", 0), derive(7, "hash", 1), derive(7, "hash", 0)]
    assert seeds.count(derive(7, "hash", 0)) == 3 == seeds.count(derive(7, "hash", 1))
    assert set(seeds) == {derive(7, "hash", i) for i in range(4)}
    assert p.spawned == 4  # each full one replaced as it filled
    assert all(c.served <= 3 for c in p.parents)


def test_follow_up_runs_do_not_age_a_parent(tmp_path):
    """Only sweep runs count against a parent's lifetime: follow-ups never ask about the
    hash seed, and each new parent costs a start-up."""
    p = pool(tmp_path, size=2, lifetime=3)
    follow_ups = [p.pick(None, ages=False)[0] for _ in range(20)]
    assert p.spawned == 2 and {f.hash_seed for f in follow_ups if f} == {
        derive(7, "hash", 0), derive(7, "hash", 1)}
    sweep = [p.pick(None)[0] for _ in range(6)]
    assert all(s is not None for s in sweep)
    # sweep runs go to the least aged: the first to fill is replaced by a fresh one
    assert [s.hash_seed for s in sweep] == [derive(7, "hash", i) for i in (0, 1, 0, 1, 0, 2)]
    assert p.spawned == 3 and [c.aged for c in p.parents] == [3, 2, 1]


def test_a_replay_gets_a_parent_with_its_own_hash_seed(tmp_path):
    p = pool(tmp_path, size=1)
    parent, why = p.pick(12345)
    assert parent is not None and parent.hash_seed == 12345 and why == ""
    assert not parent.rotating  # it serves only runs of its hash seed
    again, _ = p.pick(12345)
    assert again is parent
    rotation, _ = p.pick(None)
    assert rotation is not None and rotation.hash_seed == derive(7, "hash", 0)


def test_a_replay_parent_serves_every_run_of_its_hash_seed(tmp_path):
    p = pool(tmp_path, size=1, lifetime=2)
    first = [p.pick(555)[0] for _ in range(6)]
    assert len({id(parent) for parent in first}) == 1  # no lifetime: one parent, not three
    assert p.spawned == 2  # the rotation's one, and this one


def test_too_many_hash_seeds_at_once_make_room_or_start_fresh(tmp_path):
    p = pool(tmp_path, size=1)
    replay = [p.pick(1000 + seed)[0] for seed in range(4)]
    assert all(parent is not None for parent in replay)
    p.pick(1001)  # used again: 1000 is now the one used longest ago
    parent, why = p.pick(99)  # all idle: the one used longest ago retires
    assert parent is not None and parent.hash_seed == 99 and why == ""
    assert replay[0].state == "closed" and all(r.state == "ready" for r in replay[1:])
    for r in p.parents:
        r.alive = {1}  # every parent has a run going: none can retire
    parent, why = p.pick(98)
    assert parent is None and why == "no warm parent with its hash seed 98"


def test_a_run_that_needs_a_fresh_process_gets_one(tmp_path):
    parent, why = pool(tmp_path).pick(None, fresh_only="a network namespace needs a fresh process")
    assert parent is None and why == "a network namespace needs a fresh process"


def test_an_unsafe_preload_is_cut_where_it_became_unsafe(tmp_path):
    modules = [["a", "/x/a.py"], ["b", "/x/b.py"], ["c", "/x/c.py"]]
    p = pool(tmp_path, size=1, preload=modules)
    first = p.parents[0]
    first.state, first.safe = "failed", 1
    first.why = "importing b: 2 threads running"
    parent, why = p.pick(None)
    assert parent is not None and parent is not first
    assert p.preload == modules[:1] and parent.preload == modules[:1]
    assert p.notes == ["preloading stopped at importing b: 2 threads running"]


class WarmingParent(FakeParent):
    """Starts warming: ready (or failed) only when the test says so."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.state = "warming"


def test_where_a_preload_had_to_stop_is_remembered_for_the_next_hunt(tmp_path):
    modules = [["a", "/x/a.py"], ["b", "/x/b.py"], ["c", "/x/c.py"]]
    memo = tmp_path / "cache" / "preload.json"
    p = Pool("python", tmp_path, {}, tmp_path / "warm", seed=7, preload=modules, size=2,
             factory=WarmingParent, memo=memo)
    assert p.spawned == 2 and not memo.exists()
    first = p.parents[0]
    first.state, first.safe, first.why = "failed", 2, "importing c: it warns (DeprecationWarning)"
    p.pump()
    assert p.spawned == 3 and p.parents[-1].preload == modules[:2]  # its replacement
    # the next hunt with the same preload starts every parent with the cut one
    again = Pool("python", tmp_path, {}, tmp_path / "warm2", seed=7, preload=modules, size=2,
                 factory=WarmingParent, memo=memo)
    assert again.preload == modules[:2]
    assert [q.preload for q in again.parents] == [modules[:2]] * 2
    assert again.notes == ["preloading stopped at importing c: it warns (DeprecationWarning)"
                           " (found by an earlier hunt)"]


@pytest.mark.parametrize("text", ["not json", '{"safe": 9, "why": "x"}', '{"why": "x"}',
                                  '{"safe": -1, "why": "x"}'])
def test_a_memo_that_does_not_fit_is_ignored(tmp_path, text):
    modules = [["a", "/x/a.py"], ["b", "/x/b.py"]]
    memo = tmp_path / "preload.json"
    memo.write_text(text)
    p = pool(tmp_path, preload=modules, memo=memo)
    assert p.preload == modules and p.notes == []


def test_the_memo_is_kept_per_interpreter_and_preload(tmp_path):
    a = memo_file(tmp_path, "python3", [["a", "/x/a.py"]])
    assert a == memo_file(tmp_path, "python3", [["a", "/x/a.py"]]) and a.parent == tmp_path
    assert a != memo_file(tmp_path, "python3", [["a", "/y/a.py"]])
    assert a != memo_file(tmp_path, "/venv/bin/python", [["a", "/x/a.py"]])


def test_a_parent_that_cannot_import_pytest_safely_turns_warm_starts_off(tmp_path):
    p = pool(tmp_path, size=1)
    p.parents[0].state = "failed"
    p.parents[0].why = "after importing pytest: 3 threads running"
    parent, why = p.pick(None)
    assert parent is None
    assert why == "warm start off: after importing pytest: 3 threads running"
    assert p.summary()["off"] == "after importing pytest: 3 threads running"


def test_how_runs_started_is_summed_up(tmp_path):
    def run(i: int, start: dict[str, Any], hash_seed: int | None = None) -> RunResult:
        return RunResult(RunSpec(index=i, random_seed=i, hash_seed=hash_seed), RunStatus.OK, 0,
                         1.0, (), "", profile_applied={"start": start})

    class Launcher:
        pool = None

    runs = [run(0, {"kind": "fresh", "why": "a network namespace needs a fresh process"}),
            run(1, {"kind": "warm", "hash_seed": 5}, 5), run(2, {"kind": "warm"}, 5)]
    assert start_summary(runs, Launcher()) == {  # type: ignore[arg-type]
        "asked": "fresh", "warm": 2, "fresh": 1, "hash_seeds": 2,
        "fresh_why": {"a network namespace needs a fresh process": 1}}
    # the CPU a warm parent measured for its runs, summed by purpose
    measured = [run(3, {"kind": "warm", "cpu": 0.25}, 5), run(4, {"kind": "warm", "cpu": 0.5}, 5),
                replace(run(5, {"kind": "warm", "cpu": 0.125}, 5),
                        spec=RunSpec(index=5, purpose=Purpose.REPLAY, hash_seed=5))]
    assert start_summary([*runs, *measured], Launcher())["runs_cpu"] == {  # type: ignore[arg-type]
        "sweep": 0.75, "replay": 0.125}


def test_exit_statuses_read_as_popen_reads_them():
    assert exit_code(0) == 0
    assert exit_code(1 << 8) == 1
    assert exit_code(9) == -9  # killed by SIGKILL
