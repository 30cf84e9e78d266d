"""The culprit as data: what a finding blames, for a fix to act on.

The rules decide the category and the words; these functions lift the one object or
state item the evidence names into a :class:`~flakehunt.model.Culprit`. Among what a
polluter changed, the item the victim's failing path reads comes first
(:func:`ranked`); a culprit is ``verified`` only after a follow-up run reset that item
alone, right before the victim, and the victim passed (:func:`reset_requests`).
"""

from __future__ import annotations

import json
import re

from flakehunt.classify.facts import Facts, anatomies, reads, user_fixture_names
from flakehunt.model import Culprit
from flakehunt.wire import ResetRequest, StateChange

#: state every run touches in passing: named last, never reset
INCIDENTAL = ("<sys.path>", "<event loop policy>")
#: leaked items reset one at a time, a run each, until the test passes: the first is
#: the one the failing path reads; a second only when resetting the first did not help
RESET_TRIES = 2


def parts(what: str) -> list[str]:
    """The names in a dotted path with items: ``a.b['k'].c`` -> a, b, k, c."""
    return [p for p in re.split(r"[.\[\]'\"]+", what) if p]


def cause_score(change: StateChange, read: set[str]) -> int:
    """How directly the failing path reads the changed item: its own name (3), a name
    on its path (2), an environment variable it names (3); incidental state -1."""
    what = change.get("what", "")
    if what in INCIDENTAL:
        return -1
    if change.get("kind") == "env":
        return 3 if read & set(change.get("keys") or ()) else 0
    names = parts(what)
    if names and names[-1] in read:
        return 3
    if change.get("kind") == "logging" and what in read:
        return 3
    return 2 if read & set(names[1:]) else 0


def ranked(fx: Facts) -> list[StateChange]:
    """What the culprits left changed: the item a reset showed to be the cause first,
    then what the victim's failing path reads (a stable sort: the snapshot's order
    among equals)."""
    read = reads(fx)
    proven = fx.reset_item if fx.reset_passed else None
    score = [cause_score(c, read) for c in fx.leaked]
    for i, c in enumerate(fx.leaked):
        if c.get("kind") == "reload":  # it replaced what it holds: above all of it
            under = [s for d, s in zip(fx.leaked, score, strict=True)
                     if d.get("what", "").startswith(c.get("what", "") + ".")]
            score[i] = max([score[i], *under]) + 1 if under else score[i]
    order = sorted(range(len(fx.leaked)),
                   key=lambda i: (fx.leaked[i] != proven, -score[i], i))
    return [fx.leaked[i] for i in order]


def reset_kind(change: StateChange) -> str:
    """How a child puts the item back (flakehunt.reset): env, cwd, patches, logging,
    cache, else a module global, attribute or class attribute by its dotted path."""
    kind = change.get("kind") or "global"
    what = change.get("what", "")
    if what == "<cwd>":
        return "cwd"
    if what == "<mock patches>":
        return "patches"
    if kind == "reload":
        return "module"
    return kind if kind in ("env", "logging", "cache") else "global"


def reset_requests(fx: Facts, most: int = RESET_TRIES) -> list[tuple[StateChange, str]]:
    """The top-ranked leaked items a child can put back (at most ``most``), each with
    the ``--flakehunt-reset`` JSON that does it right before this test."""
    out: list[tuple[StateChange, str]] = []
    reloaded = tuple(c.get("what", "") + "." for c in fx.leaked if c.get("kind") == "reload")
    for change in ranked(fx):
        what = change.get("what", "")
        if reloaded and what.startswith(reloaded):
            continue  # replaced by a reload: putting one piece back undoes nothing
        kind = reset_kind(change)
        request: ResetRequest = {"kind": kind, "target": what, "before": fx.nodeid}
        if kind == "env":
            request["keys"] = list(change.get("keys") or [])
        if what in INCIDENTAL or (kind == "env" and not request.get("keys")) or \
                (kind == "global" and (what.startswith("<") or "." not in what)):
            continue
        out.append((change, json.dumps(request, separators=(",", ":"))))
        if len(out) == most:
            break
    return out


def leaked(fx: Facts, fixture: str | None) -> Culprit | None:
    """The leaked item the failing path reads (else the first the polluter changed),
    verified when resetting it alone made the victim pass."""
    if not fx.leaked:
        return None
    change = ranked(fx)[0]
    kind = change.get("kind") or "global"
    verified = fx.reset_passed is True and fx.reset_item == change
    detail = change.get("change", "") if kind == "env" else \
        f"{change.get('before')} -> {change.get('after')}"
    return Culprit(kind, change.get("what", "?"), fixture, detail, verified)


def loop_holder(fx: Facts) -> Culprit | None:
    """The object that keeps the dead (or foreign) loop the failure met, the user's
    fixtures' holders first, as in the evidence."""
    users = user_fixture_names(fx)
    for fa in anatomies(fx):
        holders = sorted(fa.get("holders", []), key=lambda h: h.get("fixture") not in users)
        if holders:
            h = holders[0]
            fixture = h.get("fixture") if h.get("fixture") in users else None
            return Culprit("loop-holder", f"{h['object']}.{h['attribute']}", fixture,
                           f"holds {h.get('loop', 'a loop')}; met as `{h.get('local', '?')}`",
                           via=h.get("fixture_path") or "")
    return None


#: the kinds of resource a fixture hands over that workers share (wire.Resource)
SHARED_KINDS = ("port", "path", "tmp")


def shared_resource(fx: Facts, fixture: str | None) -> Culprit | None:
    """What the race's fixture hands over that every xdist worker shares: a fixed port
    or file its value or set-up error showed (:mod:`flakehunt.resources`), in a failing
    execution first."""
    for _, r in fx.bad + fx.good:
        for entry in r.evidence.get("fixtures", []):
            res = entry.get("resource")
            if not res or entry.get("name") != fixture or res.get("kind") not in SHARED_KINDS:
                continue
            name = res.get("global")
            target = (f"{res.get('module')}.{name}" if name
                      else f"<tmp>/{res.get('value', '?')}")  # kind tmp: relative to it
            return Culprit(res["kind"], target, fixture, res.get("value", ""))
    return None
