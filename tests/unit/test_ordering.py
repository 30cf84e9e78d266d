from __future__ import annotations

import random

import pytest

from flakehunt import ordering

IDS = [
    "tests/test_a.py::test_one",
    "tests/test_a.py::test_two",
    "tests/test_a.py::TestK::test_m1",
    "tests/test_a.py::TestK::test_m2",
    "tests/test_a.py::TestK::test_m3",
    "tests/test_a.py::TestL::test_n[1]",
    "tests/test_a.py::TestL::test_n[2]",
    "tests/test_b.py::test_x[a-b]",
    "tests/test_b.py::test_x[c-d]",
    "tests/test_b.py::test_y",
    "tests/sub/test_c.py::test_z",
    "tests/sub/test_c.py::TestM::test_q",
    "tests/sub/test_c.py::TestM::test_r",
    "tests/sub/test_c.py::test_w",
] + [f"tests/test_many.py::test_{i}" for i in range(30)]

SEEDS = [0, 1, 2, 17, 12345, 2**31 - 1, -5]


def hash_order(seed: int, ids=IDS) -> list[str]:
    return ordering.apply_order(f"hash:{seed}", ids)


@pytest.mark.parametrize("seed", SEEDS)
def test_hash_order_is_deterministic_for_a_seed(seed):
    first = hash_order(seed)
    assert first == hash_order(seed)
    assert first == hash_order(seed, list(reversed(IDS)))  # input order does not matter
    assert sorted(first) == sorted(IDS)


def test_hash_order_differs_across_seeds():
    orders = {tuple(hash_order(seed)) for seed in SEEDS}
    assert len(orders) == len(SEEDS)
    assert all(list(o) != IDS for o in orders)


@pytest.mark.parametrize("seed", SEEDS)
def test_hash_order_is_subset_stable(seed):
    full = hash_order(seed)
    rng = random.Random(seed)  # a local generator: the subsets themselves are fixed
    for _ in range(40):
        subset = rng.sample(IDS, rng.randint(1, len(IDS)))
        expected = [n for n in full if n in set(subset)]
        assert hash_order(seed, subset) == expected


def contiguous(order: list[str], key) -> bool:
    """Every group of ``key`` appears as one block in ``order``."""
    seen, last = set(), object()
    for item in order:
        k = key(item)
        if k != last:
            if k in seen:
                return False
            seen.add(k)
            last = k
    return True


def module_of(nodeid: str) -> str:
    return nodeid.split("::")[0]


def class_of(nodeid: str) -> str:
    parts = nodeid.split("::")
    return "::".join(parts[:-1]) if len(parts) > 2 else parts[0] + "::<functions>"


@pytest.mark.parametrize("seed", range(25))
def test_hash_order_keeps_modules_and_classes_together(seed):
    order = hash_order(seed)
    assert contiguous(order, module_of)
    assert contiguous(order, class_of)


def test_hash_order_actually_shuffles_modules_and_tests():
    module_orders = {tuple(dict.fromkeys(module_of(n) for n in hash_order(s))) for s in range(20)}
    assert len(module_orders) > 1
    many = [n for n in IDS if "test_many" in n]
    assert {tuple(hash_order(s, many)) for s in range(5)} != {tuple(many)}


def test_apply_order_declared_and_reverse():
    assert ordering.apply_order("declared", IDS) == IDS
    assert ordering.apply_order("reverse", IDS) == list(reversed(IDS))
    assert ordering.apply_order("declared", []) == []


def test_apply_order_uses_the_nodeid_mapping():
    class Item:
        def __init__(self, nodeid):
            self.nodeid = nodeid

    items = [Item(n) for n in IDS]
    ordered = ordering.apply_order("hash:3", items, nodeid=lambda i: i.nodeid)
    assert [i.nodeid for i in ordered] == hash_order(3)
    assert all(isinstance(i, Item) for i in ordered)


def test_hash_key_levels():
    a = ordering.hash_key(7, "m.py::C::test_a")
    b = ordering.hash_key(7, "m.py::C::test_b")
    c = ordering.hash_key(7, "m.py::test_c")
    assert a[:2] == b[:2] and a[2] != b[2]  # same module and class, different test
    assert a[0] == c[0] and a[1] != c[1]  # same module, function vs class level
    assert ordering.hash_key(7, "m.py::C::test_a") != ordering.hash_key(8, "m.py::C::test_a")


@pytest.mark.parametrize("text, expected", [
    ("declared", ("declared", None)),
    ("reverse", ("reverse", None)),
    ("hash:0", ("hash", 0)),
    ("hash:12", ("hash", 12)),
    ("hash:-3", ("hash", -3)),
])
def test_parse_order(text, expected):
    assert ordering.parse_order(text) == expected
    assert ordering.format_order(*expected) == text


@pytest.mark.parametrize("text", [
    "", "bogus", "hash", "hash:", "hash:x", "hash:1.5", "hash: 1", "hash:-", "hash:--5",
    "declared:1", "reverse:2", "Declared", "HASH:1", "random",
])
def test_parse_order_errors(text):
    with pytest.raises(ValueError):
        ordering.parse_order(text)


def test_bad_order_message_names_the_choices():
    with pytest.raises(ValueError, match=r"bad order 'bogus'.*declared, reverse or hash:SEED"):
        ordering.parse_order("bogus")
    with pytest.raises(ValueError):
        ordering.apply_order("bogus", IDS)
