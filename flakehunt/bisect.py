"""Polluter and state-setter search on subset-stable orders.

A search is a generator: it yields a list of test ids to run (ending with the
victim) and is sent back whether the victim came out "bad". That lets the
caller run the steps of several searches side by side.
One culprit among n candidates costs ceil(log2 n) runs plus one confirmation.
"""

from __future__ import annotations

from collections.abc import Generator

Search = Generator[list[str], bool, list[str]]


def find_culprits(victim: str, candidates: list[str], want_bad: bool = True,
                  most: int = 3) -> Search:
    """Find tests that, run before ``victim``, make it bad (or, want_bad=False, good).

    Precondition: running ``candidates + [victim]`` gives the wanted outcome.
    Returns the culprits in candidate order; empty when the effect did not
    reproduce with any single culprit (it needs several, or is not
    deterministic).
    """
    found: list[str] = []
    rest = list(candidates)
    while rest and len(found) < most:
        pool = rest
        while len(pool) > 1:
            half = pool[: len(pool) // 2]
            if (yield [*half, victim]) == want_bad:
                pool = half
            else:
                pool = pool[len(pool) // 2:]
        culprit = pool[0]
        if (yield [culprit, victim]) != want_bad:
            return found  # not a single culprit: stop, report what is proven
        found.append(culprit)
        rest = [t for t in rest if t != culprit]
        if not rest or (yield [*rest, victim]) != want_bad:
            break  # the rest alone no longer has the effect: done
    return found



def find_together(victim: str, candidates: list[str], want_bad: bool = True,
                  most: int = 2) -> Search:
    """Find a few tests that, run together before ``victim`` (in candidate order), make
    it bad when no single one does: the last test of the shortest prefix with the effect
    is needed; search again before it with what is found kept after it.

    About ``most * ceil(log2 n)`` runs, plus one to check the precondition and one to
    confirm. Returns ``[]`` when ``candidates`` do not have the effect, when more than
    ``most`` tests are needed, or when the found set does not confirm.
    """
    if (yield [*candidates, victim]) != want_bad:
        return []
    needed: list[str] = []
    pool = list(candidates)
    while pool:
        if len(needed) == most:
            return []
        lo, hi = 0, len(pool)  # pool[:hi] + needed has the effect; pool[:lo] unknown/not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if (yield [*pool[:mid], *needed, victim]) == want_bad:
                hi = mid
            else:
                lo = mid
        needed.insert(0, pool[hi - 1])
        pool = pool[: hi - 1]
        if (yield [*needed, victim]) == want_bad:
            break
    else:
        return []
    return needed if len(needed) > 1 else []
