"""Polluter and state-setter search on subset-stable orders.

A search is a generator: it yields a list of test ids to run (ending with the
victim) and is sent back whether the victim came out "bad". That lets the
caller run the steps of several searches side by side.
One culprit among n candidates costs ceil(log2 n) runs plus one confirmation.
:func:`find_cause` starts from what runs already showed (the sweep's, the earlier
follow-ups'): only the causes that agree with all of it are searched, so a run
the sweep made is never asked again.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator, Sequence
from itertools import combinations

Search = Generator[list[str], bool, list[str]]
#: the tests that ran before the victim in one process, in order, and whether it came
#: out bad
Observation = tuple[tuple[str, ...], bool]
#: pairs are considered among at most this many candidates (a pair per two of them)
PAIRS_AMONG = 400


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



def find_more(victim: str, rest: list[str], want_bad: bool = True, most: int = 2) -> Search:
    """Once one culprit is found: do the others, without it, still have the effect? If
    so, find up to ``most`` more among them (one run when they do not)."""
    if not rest or (yield [*rest, victim]) != want_bad:
        return []
    return (yield from find_culprits(victim, rest, want_bad, most))


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


def find_cause(victim: str, candidates: list[str], seen: Iterable[Observation],
               hints: Sequence[tuple[str, ...]] = (), named: Sequence[str] = ()) -> Search:
    """Find the single test, else the pair of tests (the first before the second), that
    makes ``victim`` bad whenever it ran before it (pairs only once no single test
    agrees with what was seen).

    A cause agrees with an observation when "all of it ran before the victim, in its
    order" matches "the victim came out bad". Only the causes that agree with every
    observation in ``seen`` (e.g. the sweep's runs) are searched; each run is chosen to
    halve them and is added to what was seen; the last one left is confirmed by a run
    of it alone before the victim. About ceil(log2 k) + 1 runs for k causes left by
    ``seen``. When none agrees with every bad run (there are several causes: either of
    two tests, each with a third), the search keeps to what holds for several causes
    too: one lies inside the smallest bad run, and none inside a good one.
    Returns the cause in candidate order; ``[]`` when none is left (three tests, an
    effect that comes and goes). Past PAIRS_AMONG tests in every bad observation, a
    pair is bisected for (:func:`find_together`) instead of listed. ``hints`` (read
    before each run: another search may add to it meanwhile): causes found for other
    victims; one still possible here is run before halving. ``named``: tests the
    failure's own records point at (the creator of the closed event loop it met): when
    no single test does it, the pairs holding one of them are searched first.
    """
    order = list(dict.fromkeys(candidates))
    known = [(positions(tests), bad) for tests, bad in seen]
    pinned = frozenset(named).intersection(order)
    phases = [(1, False, frozenset[str]()), *([(2, False, pinned)] if pinned else []),
              (2, True, frozenset()), (2, False, frozenset())]
    for size, anchored, among in phases:
        if size == 2 and len(common := shared(order, known)) > PAIRS_AMONG:
            return (yield from find_together(victim, common))
        space = agreeing(order, known, size) or inside_bad(order, known, size, anchored)
        if among:  # only the pairs holding a named test, if that leaves fewer
            narrow = [h for h in space if among.intersection(h)]
            space = narrow if len(narrow) < len(space) else []
        if (anchored or among) and not space:
            continue
        shown: list[str] = []  # the last run, when it failed
        while len(space) > 1:
            query = next((list(h) for h in hints if h in space), None) or halving(order, space)
            if not query:
                return []
            bad = yield [*query, victim]
            known.append((positions(query), bad))
            inside = set(query)
            space = [h for h in space if inside.issuperset(h) == bad]
            shown = query if bad else []
        if space:
            if shown == list(space[0]) or (yield [*space[0], victim]):
                return list(space[0])
            known.append((positions(space[0]), False))
    return []


#: an observation as test -> its place in the run
Seen = tuple[dict[str, int], bool]


def positions(tests: Iterable[str]) -> dict[str, int]:
    return {t: i for i, t in enumerate(tests)}


def agreeing(order: list[str], seen: list[Seen], size: int) -> list[tuple[str, ...]]:
    """The causes of ``size`` tests (1 or 2, in candidate order) that agree with every
    observation: all of it before the victim in each bad run, in none of the good ones
    (a pair: in either order, or only the first before the second)."""
    common = shared(order, seen)
    if size == 2 and len(common) > PAIRS_AMONG:
        return []
    bads = [at for at, bad in seen if bad]
    goods = [at for at, bad in seen if not bad]
    # which good observations each test ran in, as bits
    mask = {t: sum(1 << i for i, at in enumerate(goods) if t in at) for t in common}
    if size == 1:
        return [(t,) for t in common if not mask[t]]
    # a pair does it in either order (no good run held both), or only first before second
    return [(a, b) for a, b in combinations(common, 2)
            if not (both := mask[a] & mask[b])
            or (all(at[a] < at[b] for at in bads)
                and not any(goods[i][a] < goods[i][b] for i in bits(both)))]


def bits(mask: int) -> Iterator[int]:
    """The indices of the bits set in ``mask``."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def inside_bad(order: list[str], seen: list[Seen], size: int,
               anchored: bool = False) -> list[tuple[str, ...]]:
    """The causes of ``size`` tests inside the smallest bad observation made of
    candidates that no good observation holds (with several causes, each bad run holds
    one of them, not necessarily the same). ``anchored``: only those with a test that
    ran before it in every bad observation (several causes that share a test, as
    either of two with a third); none when that leaves them all or none."""
    mine = set(order)
    bads = [at for at, bad in seen if bad and mine.issuperset(at)]
    smallest = min(bads, key=len) if bads else positions(order)
    inside = [t for t in order if t in smallest]
    found = agreeing(inside, [(smallest, True), *((at, bad) for at, bad in seen if not bad)],
                     size)
    if not anchored:
        return found
    common = set(shared(order, seen))
    narrow = [h for h in found if common.intersection(h)]
    return narrow if len(narrow) < len(found) else []


def shared(order: list[str], seen: list[Seen]) -> list[str]:
    """The tests that ran before the victim in every bad observation."""
    bads = [at for at, bad in seen if bad]
    return [t for t in order if all(t in at for at in bads)]


def halving(order: list[str], space: list[tuple[str, ...]]) -> list[str]:
    """Tests to run before the victim so that about half the causes lie inside them:
    from all their tests, drop the one fewest causes still inside need (the latest on a
    tie), until at most half are inside. Empty when no run splits them."""
    inside = set(range(len(space)))
    by_test: dict[str, list[int]] = {}
    for i, h in enumerate(space):
        for t in h:
            by_test.setdefault(t, []).append(i)
    keep = [t for t in order if t in by_test]
    rank = {t: i for i, t in enumerate(keep)}
    need = {t: len(ids) for t, ids in by_test.items()}  # causes inside that need t
    while len(inside) > len(space) // 2:
        drop = min(keep, key=lambda t: (need[t], -rank[t]))
        keep.remove(drop)
        for i in by_test[drop]:
            if i in inside:
                inside.discard(i)
                for t in space[i]:
                    need[t] -= 1
    return keep if 0 < len(inside) < len(space) else []
