from __future__ import annotations

import itertools

import pytest

from flakehunt import ordering
from flakehunt.plan import SERIAL_WEIGHT, PlanSettings, derive, sweep, worker_cycle


def test_sweep_is_deterministic_for_a_seed():
    settings = PlanSettings(runs=30, seed=42)
    assert sweep(settings) == sweep(PlanSettings(runs=30, seed=42))


def test_sweep_differs_for_another_seed():
    a, b = sweep(PlanSettings(runs=30, seed=1)), sweep(PlanSettings(runs=30, seed=2))
    assert [s.order for s in a[2:]] != [s.order for s in b[2:]]
    assert [s.random_seed for s in a] != [s.random_seed for s in b]
    # the parts that do not depend on the seed stay the same
    assert [(s.index, s.workers, s.profile) for s in a] == [(s.index, s.workers, s.profile)
                                                           for s in b]


def test_first_runs_are_declared_then_reverse_then_hash():
    specs = sweep(PlanSettings(runs=10, seed=5))
    assert specs[0].order == "declared"
    assert specs[1].order == "reverse"
    for spec in specs[2:]:
        kind, seed = ordering.parse_order(spec.order)
        assert kind == "hash" and seed is not None and 0 <= seed < 2**31
    assert len({s.order for s in specs[2:]}) == 8  # every hash run has its own order


@pytest.mark.parametrize("runs", [1, 2, 3, 17])
def test_indices_are_0_to_n_minus_1(runs):
    specs = sweep(PlanSettings(runs=runs, seed=0))
    assert [s.index for s in specs] == list(range(runs))
    assert all(s.purpose == "sweep" and s.tests is None and s.count == 1 for s in specs)


COMBOS = [
    ((0, 2), ("none", "single-core")),
    ((0,), ("none", "single-core")),
    ((0, 2, 4), ("none", "single-core")),
    ((0, 1, 2, 3), ("none", "single-core", "other")),
    ((2, 3), ("a", "b", "c")),
    ((0, 2), ("none",)),
]


@pytest.mark.parametrize("workers, profiles", COMBOS)
def test_every_workers_profile_combination_is_met_within_a_full_cycle(workers, profiles):
    full = len(worker_cycle(workers)) * len(profiles)
    for runs in (full, full + 1, 2 * full + 3):
        specs = sweep(PlanSettings(runs=runs, seed=9, workers=workers, profiles=profiles))
        met = {(s.workers, s.profile) for s in specs}
        assert met == set(itertools.product(workers, profiles)), runs


@pytest.mark.parametrize("workers, profiles", [c for c in COMBOS if not (0 in c[0] and
                                                                        len(c[0]) > 1)])
def test_every_combination_met_when_runs_reach_the_product(workers, profiles):
    """Without serial weighting (no 0 next to xdist counts) the product is enough."""
    runs = len(workers) * len(profiles)
    specs = sweep(PlanSettings(runs=runs, seed=9, workers=workers, profiles=profiles))
    assert {(s.workers, s.profile) for s in specs} == set(itertools.product(workers, profiles))


def test_default_combinations_met_within_one_weighted_cycle():
    """Serial runs are weighted, so one full cycle is len(worker_cycle) x profiles."""
    workers, profiles = (0, 2), ("none", "single-core")
    runs = len(worker_cycle(workers)) * len(profiles)
    specs = sweep(PlanSettings(runs=runs, seed=9, workers=workers, profiles=profiles))
    assert {(s.workers, s.profile) for s in specs} == set(itertools.product(workers, profiles))


@pytest.mark.parametrize("workers, serial_share", [
    ((0, 2), SERIAL_WEIGHT / (SERIAL_WEIGHT + 1)), ((0, 2, 4), SERIAL_WEIGHT / (SERIAL_WEIGHT + 2)),
    ((0,), 1.0), ((2, 4), 0.0),
])
def test_serial_runs_are_weighted(workers, serial_share):
    cycle = worker_cycle(workers)
    specs = sweep(PlanSettings(runs=len(cycle) * 4, seed=1, workers=workers, profiles=("none",)))
    serial = sum(1 for s in specs if s.workers == 0)
    assert serial == serial_share * len(specs)
    assert set(s.workers for s in specs) == set(workers)


def test_dist_is_carried_and_random_seeds_are_31_bit():
    specs = sweep(PlanSettings(runs=20, seed=3, dist=("loadscope",)))
    assert {s.dist for s in specs} == {"loadscope"}
    assert all(0 <= s.random_seed < 2**31 for s in specs)
    assert len({s.random_seed for s in specs}) == 20


def test_derive_depends_on_all_its_inputs():
    base = derive(1, "order", 2)
    assert base == derive(1, "order", 2)
    assert len({base, derive(2, "order", 2), derive(1, "random", 2), derive(1, "order", 3)}) == 4


def test_several_dist_modes_rotate_over_parallel_runs():
    specs = sweep(PlanSettings(runs=64, seed=3, workers=(0, 2), profiles=("none",),
                               dist=("load", "worksteal")))
    parallel = [s for s in specs if s.workers]
    assert {s.dist for s in parallel} == {"load", "worksteal"}


def test_throttled_profiles_come_twice_per_cycle_and_the_first_given_leads():
    from flakehunt.hunt import profile_weights
    from flakehunt.plan import profile_cycle

    weights = profile_weights()
    cycle = profile_cycle(("none", "quota-10", "quota-25", "jitter", "threads"), weights)
    assert cycle[0] == "none" and len(cycle) == 7
    assert sorted(cycle) == sorted(["none", "quota-10", "quota-10", "quota-25", "quota-25",
                                    "jitter", "threads"])
    assert profile_cycle(("a", "b"), weights) == ("a", "b")  # unknown names weigh 1


def test_the_plan_for_a_seed_is_pinned():
    """The default hunt's plan for seed 11 (profiles and the 3:1 share chosen on the
    corpus, benchmarks/bench_defaults.py): 24 runs meet every (workers, profile) pair."""
    from flakehunt.hunt import profile_weights
    from flakehunt.profiles import DEFAULT

    assert DEFAULT == ("none", "quota-10", "quota-25", "jitter", "threads")
    specs = sweep(PlanSettings(runs=24, seed=11, profiles=DEFAULT, weights=profile_weights()))
    assert [(s.workers, s.profile) for s in specs] == [
        (0, "none"), (0, "jitter"), (0, "threads"), (2, "quota-10"), (0, "quota-25"),
        (0, "quota-10"), (0, "quota-25"), (2, "none"), (0, "jitter"), (0, "threads"),
        (0, "quota-10"), (2, "quota-25"), (0, "quota-10"), (0, "quota-25"), (0, "none"),
        (2, "jitter"), (0, "threads"), (0, "quota-10"), (0, "quota-25"), (2, "quota-10"),
        (0, "quota-25"), (0, "none"), (0, "jitter"), (2, "threads")]
    assert len({(s.workers, s.profile) for s in specs}) == 10
    assert [s.order for s in specs[:4]] == ["declared", "reverse", "hash:1318467812",
                                            "hash:965806194"]
    assert [s.random_seed for s in specs[:3]] == [1630718747, 372636557, 255633975]
