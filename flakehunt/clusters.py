"""One finding per root cause: flaky tests that fail through the same culprit.

Two flaky tests share a root cause when their findings blame the same thing: the same
culprit (the same leaked state item, the same holder of a dead loop), or, with no
culprit, the same proven polluter(s). A finding that names neither is its own root
cause: nothing measured ties it to another (test names never do). Pure.
"""

from __future__ import annotations

import posixpath
import re

from flakehunt.model import Category, Cluster, Finding, Verdict

Key = tuple[str, ...]

#: culprit kinds a race can be blamed on: a resource every xdist worker shares
SHARED = ("port", "path", "tmp")


def key(f: Finding) -> Key:
    """What a flaky test fails through, as far as its evidence says."""
    category = (f.category or Category.UNKNOWN).value
    if f.culprit is not None and blames(f):
        return (category, "culprit", f.culprit.kind, f.culprit.target)
    if f.polluter and f.category is Category.STATE_LEAK:
        return (category, "polluter", *sorted(f.polluter))
    return (category, "test", f.nodeid)


def group(findings: tuple[Finding, ...] | list[Finding]) -> list[Cluster]:
    """The flaky findings grouped by :func:`key`, in the order their first test came;
    the worst cluster (most tests, then the highest failure rate) first."""
    groups: dict[Key, list[Finding]] = {}
    for f in findings:
        if f.verdict is Verdict.FLAKY:
            groups.setdefault(key(f), []).append(f)
    made = [cluster(members) for members in groups.values()]
    rate = {f.nodeid: f.failure_rate for f in findings}
    made.sort(key=lambda c: (-len(c.tests), -max(rate[t] for t in c.tests)))
    return made


def blames(f: Finding) -> bool:
    """The finding's culprit is what its tests fail through (a race's only when it is a
    resource the workers share)."""
    if f.culprit is None:
        return False
    if f.category is Category.RACE:
        return f.culprit.kind in SHARED
    return f.category in (Category.STATE_LEAK, Category.LOOP_CLOSED)


def cluster(members: list[Finding]) -> Cluster:
    first = members[0]
    category = first.category or Category.UNKNOWN
    polluter = tuple(sorted({p for f in members for p in f.polluter}))
    return Cluster(category=category, cause=cause(first, polluter),
                   tests=tuple(f.nodeid for f in members), culprit=first.culprit,
                   polluter=polluter, slug=slug(first))


def cause(f: Finding, polluter: tuple[str, ...]) -> str:
    """One line: the category and what the evidence blames."""
    category = (f.category or Category.UNKNOWN).value
    c = f.culprit
    by = f" (fixture `{c.fixture}`)" if c is not None and c.fixture else ""
    if f.category is Category.LOOP_CLOSED and c is not None:
        return f"{category}: {c.target} keeps an event loop from an earlier test{by}"
    if f.category is Category.STATE_LEAK and c is not None:
        after = f" by {', '.join(polluter)}" if polluter else ""
        return f"{category}: {c.target} left changed ({c.detail}){after}{by}"
    if f.category is Category.RACE and c is not None and c.kind in SHARED:
        what = (f"file {c.detail} in the temporary folder"
                if c.kind == "tmp" else f"{c.kind} {c.detail} ({c.target})")
        return f"{category}: every xdist worker uses the same {what}{by}"
    if polluter:
        return f"{category}: state left by {', '.join(polluter)}"
    fixture = f" (fixture `{f.suspected_fixture}`)" if f.suspected_fixture else ""
    return f"{category}: {f.nodeid}{fixture}"


def slug(f: Finding) -> str:
    """A file-name-safe name: the category and the culprit's last two parts, or the
    test's own name."""
    category = (f.category or Category.UNKNOWN).value
    if f.culprit is not None and f.culprit.kind == "tmp":
        tail = posixpath.basename(f.culprit.target)
    elif f.culprit is not None and blames(f):
        tail = ".".join(f.culprit.target.split(".")[-2:])
    else:
        tail = f.nodeid.rsplit("::", 1)[-1]
    text = re.sub(r"[^a-z0-9]+", "-", f"{category}-{tail}".lower()).strip("-")
    return text[:60].rstrip("-") or "cluster"
