"""The decision, pure: a flaky test's facts in, its category, fixture, evidence and
fix hint out.

:data:`RULES` is an ordered table, read top to bottom: the first row whose
predicate holds decides. Lifecycle signatures come first (they are themselves
order-dependent), a proven culprit before a timing story, and the last row
always matches. To teach flakehunt a new kind of flakiness, add a row: a name,
a predicate over :class:`Case`, and a builder of the :class:`Decision`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from flakehunt.classify import culprit as blame
from flakehunt.classify import wording as say
from flakehunt.classify.facts import (
    Facts,
    cross_worker,
    involved_fixture,
    life_signature,
    nondeterministic,
    on_failing_line,
    only_with_workers,
    order_dependent,
    raised_in,
    self_polluting,
    wide_teardown,
)
from flakehunt.model import Category, Culprit, Finding
from flakehunt.signatures import Signature
from flakehunt.stats import wilson


@dataclass(frozen=True)
class Decision:
    category: Category
    fixture: str | None
    evidence: tuple[str, ...]
    hint: str
    polluter: tuple[str, ...] = ()
    problem: str | None = None
    culprit: Culprit | None = None


@dataclass(frozen=True)
class Case:
    """One flaky test as the rules see it: its finding and facts (a culprit that did
    not reproduce k/k dropped), and what several rules look at or say."""

    f: Finding
    fx: Facts
    #: the event-loop lifecycle signature of its failures, if any
    life: Signature | None
    #: (fixture, scope) when every failure is that wider fixture's teardown error
    wide: tuple[str, str] | None
    #: what the follow-ups showed (alone, suspects, replays)
    base: tuple[str, ...]
    #: the polluter and how it was found; self-pollution
    order: tuple[str, ...]
    #: what asyncio logged during failing runs
    logs: tuple[str, ...]
    #: failures by profile, workers, order in the sweep
    sensitivity: tuple[str, ...]
    #: the culprits bisection named that did not reproduce k/k (dropped)
    unproven: tuple[str, ...] = ()


def case(f: Finding, fx: Facts) -> Case:
    k, n = fx.verified
    unproven: tuple[str, ...] = ()
    if (fx.polluters or fx.setters) and n and k < n:
        # the culprit did not reproduce k/k: not proven, so no culprit is named
        unproven = (*fx.polluters, *fx.setters)
        fx = replace(fx, polluters=[], setters=[])
    return Case(f, fx, life_signature(fx), wide_teardown(fx), tuple(say.follow_up_lines(fx)),
                tuple(say.order_lines(fx, self_polluting(fx))), tuple(say.asyncio_logs(fx)),
                tuple(say.sensitivity(f)), unproven)


# -- the builders, one per row ----------------------------------------------------------------

def teardown_loop_closed(c: Case) -> Decision:
    assert c.wide is not None and c.life is not None  # the row's predicate
    name, scope = c.wide
    return Decision(Category.LOOP_CLOSED, name,
                    (say.signature_line(c.life), say.teardown_line(name, scope), *c.logs,
                     *c.base),
                    say.teardown_loop_hint(name, scope), tuple(c.fx.polluters),
                    "fixture-teardown", blame.loop_holder(c.fx))


def teardown_unknown(c: Case) -> Decision:
    assert c.wide is not None  # the row's predicate
    name, scope = c.wide
    return Decision(Category.UNKNOWN, name, (say.teardown_line(name, scope), *c.logs, *c.base),
                    say.teardown_hint(name), (), "fixture-teardown")


def loop_closed(c: Case) -> Decision:
    assert c.life is not None  # the row's predicate
    fixture, lines, hint = say.loop_story(c.fx)
    dead = c.fx.context.dead_event_loop
    if dead:
        lines.append(say.dead_loop_line(dead))
        hint += say.DEAD_LOOP_HINT
    return Decision(Category.LOOP_CLOSED, fixture,
                    (say.signature_line(c.life), *lines, *c.order, *c.logs, *c.base,
                     *c.sensitivity), hint, tuple(c.fx.polluters),
                    culprit=blame.loop_holder(c.fx))


def polluted(c: Case) -> Decision:
    fixture, lines = say.leak_fixture(c.fx)
    return Decision(Category.STATE_LEAK, fixture,
                    (*c.order, *lines, *c.base, *c.sensitivity), say.leak_hint(c.fx, fixture),
                    tuple(c.fx.polluters), culprit=blame.leaked(c.fx, fixture))


def needs_setter(c: Case) -> Decision:
    fixture, lines = say.leak_fixture(c.fx)
    fixture = fixture or on_failing_line(c.fx)
    return Decision(Category.STATE_LEAK, fixture,
                    (say.setter_line(c.fx.setters), *lines, *c.base, *c.sensitivity),
                    say.setter_hint(c.fx.setters), tuple(c.fx.setters),
                    culprit=blame.leaked(c.fx, fixture))


def cross_worker_race(c: Case) -> Decision:
    fx = c.fx
    fixture = (say.background_fixture(fx)[0] or on_failing_line(fx) or involved_fixture(fx)
               or raised_in(fx))
    shared = blame.shared_resource(fx, fixture)
    return Decision(Category.RACE, fixture,
                    (say.cross_worker_line(fx), *say.shared_lines(shared), *c.base,
                     *c.sensitivity), say.cross_worker_hint(fixture), culprit=shared)


def timing_race(c: Case) -> Decision:
    fx = c.fx
    fixture, lines = say.background_fixture(fx)
    fixture = fixture or on_failing_line(fx) or involved_fixture(fx) or raised_in(fx)
    hint, shared = say.RACE_HINT, None
    if only_with_workers(c.f):
        hint = say.WORKERS_RACE_HINT
        shared = blame.shared_resource(fx, fixture)
        lines += [say.WORKERS_RACE_LINE, *say.shared_lines(shared)]
    return Decision(Category.RACE, fixture,
                    (say.SAME_ORDER_LINE, *lines, *c.base, *c.sensitivity), hint,
                    culprit=shared)


def order_unknown(c: Case) -> Decision:
    return Decision(Category.UNKNOWN, involved_fixture(c.fx) or raised_in(c.fx),
                    (say.order_unknown_line(c.fx, list(c.unproven), only_with_workers(c.f)),
                     *c.base, *c.sensitivity), say.ORDER_UNKNOWN_HINT)


def unexplained(c: Case) -> Decision:
    return Decision(Category.UNKNOWN, involved_fixture(c.fx) or raised_in(c.fx),
                    (say.unknown_line(c.fx), *c.base, *c.sensitivity), say.UNKNOWN_HINT)


# -- the table --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    """A row of the table: when ``applies``, ``build`` says what the test is."""

    name: str
    applies: Callable[[Case], bool]
    build: Callable[[Case], Decision]


RULES: tuple[Rule, ...] = (
    # a wider-scoped fixture's teardown error lands on whichever test ran last: not its fault
    Rule("wide-teardown, loop signature", lambda c: c.wide is not None and c.life is not None,
         teardown_loop_closed),
    Rule("wide-teardown", lambda c: c.wide is not None, teardown_unknown),
    # lifecycle signatures before order evidence: they are themselves order-dependent
    Rule("lifecycle signature", lambda c: c.life is not None, loop_closed),
    Rule("polluter", lambda c: bool(c.fx.polluters), polluted),
    Rule("state-setter", lambda c: bool(c.fx.setters), needs_setter),
    Rule("cross-worker", lambda c: cross_worker(c.fx), cross_worker_race),
    Rule("nondeterministic", lambda c: nondeterministic(c.fx), timing_race),
    # order dependence shown, but no polluter proven: say so, name no culprit
    Rule("order-dependent, no polluter", lambda c: order_dependent(c.fx), order_unknown),
    Rule("fallback", lambda c: True, unexplained),
)


def decide(f: Finding, fx: Facts) -> Decision:
    """The first row of :data:`RULES` that applies decides."""
    c = case(f, fx)
    return next(rule.build(c) for rule in RULES if rule.applies(c))


def finish(f: Finding, fx: Facts) -> Finding:
    """The finding with its decision, its confidence and its reproducer (marked when it
    did not fail k/k)."""
    d = decide(f, fx)
    lo, hi = wilson(f.bad, f.runs - f.skipped)
    k, n = fx.verified
    verified = n > 0 and k == n
    reproduce = fx.reproduce if verified else (
        say.unverified(fx.reproduce, fx.verified) if fx.reproduce else None)
    return replace(f, category=d.category, suspected_fixture=d.fixture, polluter=d.polluter,
                   evidence=d.evidence, fix_hint=d.hint,
                   confidence=say.confidence(f, lo, hi, fx.verified),
                   reproduce=reproduce, problem=d.problem, culprit=d.culprit,
                   followups=dict(fx.spent))
