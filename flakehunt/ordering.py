"""Subset-stable test orders, shared by the planner and the child plugin.

An order is one of ``declared``, ``reverse`` or ``hash:SEED``. The hash order
sorts by ``crc32(f"{seed}::{key}")`` at three levels (module, class, test) so
fixtures of module and class scope keep their grouping, and any subset of the
tests keeps its relative order: bisection and replay of a prefix stay valid.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def crc(seed: int, key: str) -> int:
    return zlib.crc32(f"{seed}::{key}".encode())


def derive(seed: int, what: str, index: int) -> int:
    """A 31-bit seed for ``what`` of run ``index``, stable for a hunt seed."""
    return crc(seed, f"{what}-{index}") & 0x7FFFFFFF


def hash_key(seed: int, nodeid: str) -> tuple[int, int, int]:
    """Sort key of one test id under the hash order with ``seed``."""
    path, _, rest = nodeid.partition("::")
    parts = rest.split("::")
    klass = "::".join(parts[:-1])
    return (crc(seed, path), crc(seed, f"{path}::{klass}"), crc(seed, nodeid))


def parse_order(text: str) -> tuple[str, int | None]:
    """``"hash:12"`` -> ``("hash", 12)``; ``"declared"`` -> ``("declared", None)``."""
    kind, _, seed = text.partition(":")
    if kind in ("declared", "reverse") and not seed:
        return kind, None
    if kind == "hash" and seed.lstrip("-").isdigit():
        return kind, int(seed)
    raise ValueError(f"bad order {text!r}: expected declared, reverse or hash:SEED")


def format_order(kind: str, seed: int | None) -> str:
    return f"hash:{seed}" if kind == "hash" else kind


def apply_order(order: str, items: Sequence[T],
                nodeid: Callable[[T], str] = str) -> list[T]:
    """Return ``items`` in ``order``; ``nodeid`` maps an item to its test id."""
    kind, seed = parse_order(order)
    if kind == "declared":
        return list(items)
    if kind == "reverse":
        return list(reversed(items))
    assert seed is not None
    return sorted(items, key=lambda item: hash_key(seed, nodeid(item)))
