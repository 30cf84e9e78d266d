"""The culprit as data: what a finding blames, for a fix to act on.

The rules decide the category and the words; these functions lift the one object or
state item the evidence names into a :class:`~flakehunt.model.Culprit`. Nothing here is
verified: a culprit is ``verified`` only after a follow-up run reset it and the victim
passed.
"""

from __future__ import annotations

from flakehunt.classify.facts import Facts, anatomies, user_fixture_names
from flakehunt.model import Culprit


def leaked(fx: Facts, fixture: str | None) -> Culprit | None:
    """The first state item the polluter (or setter) changed and left changed."""
    if not fx.leaked:
        return None
    change = fx.leaked[0]
    kind = change.get("kind") or "global"
    if kind == "env":
        return Culprit("env", change.get("what", "os.environ"), fixture,
                       change.get("change", ""))
    detail = f"{change.get('before')} -> {change.get('after')}"
    return Culprit(kind, change.get("what", "?"), fixture, detail)


def loop_holder(fx: Facts) -> Culprit | None:
    """The object that keeps the dead (or foreign) loop the failure met, the user's
    fixtures' holders first, as in the evidence."""
    users = user_fixture_names(fx)
    for fa in anatomies(fx):
        holders = sorted(fa.get("holders", []), key=lambda h: h.get("fixture") not in users)
        if holders:
            h = holders[0]
            return Culprit("loop-holder", f"{h['object']}.{h['attribute']}", h.get("fixture"),
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
