"""The words: evidence lines and fix hints, and the fixture each story points at.

Every sentence flakehunt says about a flaky test is built here, from
:class:`~flakehunt.classify.facts.Facts`; :mod:`flakehunt.classify.rules` decides
which of them to say. Reports and tests compare these strings: change them
deliberately.
"""

from __future__ import annotations

from flakehunt.classify import culprit as blame
from flakehunt.classify.facts import (
    Facts,
    anatomies,
    involved_fixture,
    loop_maker,
    on_failing_line,
    raised_in,
    route,
    user_fixture_names,
    user_fixtures,
    wide_cached_fixtures,
)
from flakehunt.model import Culprit, Finding
from flakehunt.signatures import Signature
from flakehunt.wire import Anatomy, FixtureEntry, Holder, LoopFacts, StateChange

#: a fixture (None: none found), the evidence lines, the fix hint
Story = tuple[str | None, list[str], str]


def q(name: str | None) -> str:
    return f"`{name}`" if name else "none"


def signature_line(sig: Signature) -> str:
    return f"signature: {sig.pattern.pattern!r} - {sig.meaning}"


# -- what every decision says: the follow-ups and the sweep -----------------------------------

def follow_up_lines(fx: Facts) -> list[str]:
    """What the test alone, the sweep's suspects and the replays showed."""
    base = [f"alone: failed {fx.alone_first[0]}/{fx.alone_first[1]} first runs in a fresh "
            f"process, {fx.alone_later[0]}/{fx.alone_later[1]} repeats"
            ] if fx.alone_first[1] else []
    if fx.suspect_run[1]:
        base.append(f"after the {len(fx.suspects)} test(s) the sweep left under suspicion "
                    f"({', '.join(fx.suspects[:3])}{', ...' if len(fx.suspects) > 3 else ''}): "
                    f"failed {fx.suspect_run[0]}/{fx.suspect_run[1]}")
    if fx.replay[1]:
        base.append(f"failing order replayed: failed {fx.replay[0]}/{fx.replay[1]}")
    if fx.reseeded[1]:
        moved = ("the seeds moved it: timing or randomness decides, not the order"
                 if fx.reseeded[0] < fx.reseeded[1] else "the seeds did not move it")
        base.append(f"failing order replayed with other random and hash seeds: failed "
                    f"{fx.reseeded[0]}/{fx.reseeded[1]}; {moved}")
    if fx.unrun:
        base.append(f"not counted: {unrun_summary(fx)}")
    return base


#: what each kind of follow-up run was for, in words
PROBE_WORDS = {"alone": "the test alone", "suspect": "after its suspects",
               "serial": "its failing order in one process", "replay": "its failing run replayed",
               "bisect": "a bisection step", "repro": "a reproducer trial",
               "reset": "a culprit check", "reorder": "another order",
               "reseed": "its failing order with other seeds"}


def unrun_summary(fx: Facts) -> str:
    """The follow-up runs that did not run the test: how many, what for, the first why."""
    what = ", ".join(dict.fromkeys(PROBE_WORDS[str(p)] for p, _, _ in fx.unrun))
    _, index, why = fx.unrun[0]
    return (f"{len(fx.unrun)} follow-up run(s) did not run the test ({what}); "
            f"run {index}: {why}")


def unrun_warnings(facts: dict[str, Facts]) -> list[str]:
    """One warning per test some of whose follow-up runs did not run it."""
    return [f"{nodeid}: {unrun_summary(fx)}" for nodeid, fx in facts.items() if fx.unrun]


def order_lines(fx: Facts, self_polluting: bool) -> list[str]:
    """The polluter and how it was found; a test that pollutes itself."""
    how = ("it created the closed event loop the failure met; run first, it made the "
           "test fail" if fx.by_creator else "bisected; passes alone")
    if fx.together:
        how = "run together before it, in this order; neither alone does it; bisected"
    joined = " and ".join(fx.polluters) if fx.together else ", ".join(fx.polluters)
    lines = [f"fails after {joined} ({how})"] if fx.polluters else []
    if self_polluting:
        lines.append("repeated in one process it fails from its 2nd run on: it leaves "
                     "the state behind itself too")
    return lines


def sensitivity(f: Finding) -> list[str]:
    out = []
    for dim in ("profile", "workers", "order"):
        cells = f.breakdown.get(dim, {})
        if len(cells) > 1:
            parts = ", ".join(f"{v} {b}/{n}" for v, (b, n) in sorted(cells.items()) if n)
            out.append(f"failures by {dim}: {parts}")
    return out


def asyncio_logs(fx: Facts) -> list[str]:
    seen: list[str] = []
    for _, r in fx.bad:
        for m in r.evidence.get("asyncio_log") or ():
            if m not in seen:
                seen.append(m)
    return [f"asyncio logged during a failing run: {m}" for m in seen[:3]]


# -- a teardown error of a wider-scoped fixture -----------------------------------------------

def teardown_line(name: str, scope: str) -> str:
    return (f"every failure is an error in the teardown of {scope}-scoped `{name}`: it "
            f"lands on whichever test ran last in its scope, so this test is not the "
            f"culprit")


def teardown_loop_hint(name: str, scope: str) -> str:
    return (f"close what `{name}` holds on the loop it was made on: give it "
            f"loop_scope=\"{scope}\" (@pytest_asyncio.fixture(scope=\"{scope}\", "
            f"loop_scope=\"{scope}\"))")


def teardown_hint(name: str) -> str:
    return f"fix the teardown of `{name}`"


# -- loop-closed ------------------------------------------------------------------------------

def loop_story(fx: Facts) -> Story:
    """Which fixture keeps the closed/foreign loop, in words."""
    held = holder_story(fx)
    if held is not None:
        fixture, lines, hint = held
        return fixture or loop_maker(fx), lines, hint or LOOP_HINT
    lines = foreign_loop_lines(fx)
    fixture, hint = None, ""
    wide = wide_cached_fixtures(fx)
    if wide:
        fixture = wide[0]["name"]
        lines.append(wide_cache_line(wide[0]))
        hint = wide_cache_hint(wide[0])
    if fixture is None:
        fixture = loop_maker(fx) or involved_fixture(fx) or raised_in(fx)
    return fixture, lines, hint or LOOP_HINT


LOOP_HINT = "create loop-bound objects inside the loop that uses them"


def holder_story(fx: Facts) -> Story | None:
    """The first failure whose frames hold a foreign loop: each holder, the user's
    fixtures first; the fixture of the first holder that names one."""
    users = user_fixture_names(fx)
    for fa in anatomies(fx):
        fixture: str | None = None
        lines, hint = [], ""
        for h in sorted(fa.get("holders", []), key=lambda h: h.get("fixture") not in users):
            lines.append(holder_line(fx, h, fa))
            if fixture is None and h.get("fixture") in users:
                fixture = h["fixture"]
                hint = (f"don't keep the event loop in {h['object']}.{h['attribute']}: "
                        f"look it up with asyncio.get_running_loop() when needed, or reset "
                        f"it per test in `{h['fixture']}`; if the tests must share one loop, "
                        f"mark them @pytest.mark.asyncio(loop_scope=\"module\") and give the "
                        f"fixtures the same loop_scope")
        if lines:
            return fixture, lines, hint
    return None


def holder_line(fx: Facts, h: Holder, fa: Anatomy) -> str:
    """What holds which loop, who made the loop, how the failure met the holder."""
    loop: LoopFacts = next((lp for lp in fa.get("loops", []) if lp["label"] == h["loop"]),
                           LoopFacts())
    state = "closed" if loop.get("closed") else "still open"
    made = loop.get("created_by_test")
    origin = (f"created for {made}" if made and made != fx.nodeid
              else "created in this test" if made else "of unknown origin")
    by, via = loop.get("created_by_fixture"), loop.get("created_via")
    maker = (f" by `{by}`" if by else "") + (f" through `{via}`" if via else "")
    return (f"{h['object']}.{h['attribute']} holds {loop.get('label', 'a loop')} "
            f"({origin}{maker}, {state}); met as "
            f"`{h['local']}`" + (f", handed to the test by fixture `{h['fixture']}`"
                                  f"{h['fixture_path'] and ' (' + h['fixture_path'] + ')'}"
                                  if h.get("fixture") else "")
            + (f", handed over through `{h['route']}`" if h.get("route") else ""))


def foreign_loop_lines(fx: Facts) -> list[str]:
    """Per failure, the first loop of another test its frames used."""
    lines = []
    for fa in anatomies(fx):
        for loop in fa.get("foreign_loops", [])[:1]:
            via = loop.get("created_via")
            lines.append(f"failing frames use {loop['label']} "
                         f"({'closed' if loop.get('closed') else 'open'}), created for "
                         f"{loop.get('created_by_test') or '?'} by "
                         f"{q(loop.get('created_by_fixture'))}"
                         f"{' through `' + via + '`' if via else ''}; met as "
                         f"{loop.get('met_as')}")
    return lines


def wide_cache_line(f: FixtureEntry) -> str:
    return (f"{f['scope']}-scoped `{f['name']}` ({f.get('loc', '?')}) was created "
            f"for {f.get('cached_from') or 'an earlier test'} and reused here; tests "
            f"run on their own loops")


def wide_cache_hint(f: FixtureEntry) -> str:
    return (f"give `{f['name']}` a loop_scope equal to its scope "
            f"(@pytest_asyncio.fixture(scope=\"{f['scope']}\", "
            f"loop_scope=\"{f['scope']}\")) and run its tests with "
            f"@pytest.mark.asyncio(loop_scope=\"{f['scope']}\"), or make it "
            f"function-scoped so it is recreated per loop")


def dead_loop_line(dead: tuple[str, ...]) -> str:
    return (f"fixture event_loop at {', '.join(dead)} does nothing on "
            f"pytest-asyncio >= 1.0 (which removed the fixture it overrode): "
            f"it does not share a loop, and nothing warns")


DEAD_LOOP_HINT = "; delete the dead event_loop fixture"


# -- state-leak -------------------------------------------------------------------------------

def leak_fixture(fx: Facts) -> tuple[str | None, list[str]]:
    """The test's fixture that hands over the object the polluter changed; the changes,
    what the failing path reads first, and what resetting the first of them showed."""
    lines = []
    for change in blame.ranked(fx)[:4]:
        if change.get("kind") == "env":
            lines.append(f"{change['by']} changed os.environ: {change['change']}")
        else:
            lines.append(f"{item(change)}: {change.get('before')} -> {change.get('after')} "
                         f"after {change['by']} (not restored)")
    results = [r for _, r in fx.bad] + [r for _, r in fx.good]
    for r in results:
        for f in user_fixtures(r):
            g = f.get("global")
            if g and any(c.get("what", "").startswith(g) for c in fx.leaked):
                lines.append(f"fixture `{f['name']}` ({f.get('loc', '?')}) hands the test {g}")
                return f["name"], lines + reset_lines(fx)
    fixture = involved_fixture(fx) or raised_in(fx) or on_failing_line(fx)
    lines += reset_lines(fx)
    via = route(fx)
    if fixture is None and via:
        lines.append(route_line(via))
    return fixture, lines


def item(change: StateChange) -> str:
    """A leaked item in words: a logger, the working directory, started patches, or
    its dotted path."""
    what = change.get("what", "?")
    if change.get("kind") == "logging":
        return f"logger {what!r}"
    if change.get("kind") == "reload":
        return f"module {what}"
    return {"<cwd>": "the working directory", "<mock patches>": "mock.patch patches started",
            }.get(what, what)


def route_line(via: str) -> str:
    return (f"handed over through `{via}` (pytest's or a plugin's fixture: the route, "
            f"not the culprit)")


def reset_lines(fx: Facts) -> list[str]:
    """What putting leaked items back, one at a time, before the test showed."""
    lines = [f"with {item(c)} reset alone to its value before the polluter, "
             f"it still failed: that item alone is not the cause" for c in fx.reset_failed]
    if fx.reset_item is not None and fx.reset_passed:
        lines.append(f"verified: with {item(fx.reset_item)} reset alone to its "
                     f"value before the polluter, right before the test, it passed "
                     f"{fx.reset_passes or 1}/{fx.reset_passes or 1} runs")
    return lines


def leak_hint(fx: Facts, fixture: str | None) -> str:
    top = blame.ranked(fx)[0] if fx.leaked else None
    if top is not None and top.get("kind") == "reload":
        return (f"don't reload {top.get('what')} in a test: a reload replaces its classes "
                f"and functions under every module that imported them before; patch "
                f"what the test needs instead (mock.patch), or reload the importers too; "
                f"polluter: {', '.join(fx.polluters)}")
    what = item(top) if top is not None else "the shared state"
    where = f"in `{fixture}` or an autouse fixture" if fixture else "in an autouse fixture"
    return (f"reset {what} after each test ({where}), or give each test its own "
            f"instance; polluter: {', '.join(fx.polluters)}")


def setter_line(setters: list[str]) -> str:
    return (f"brittle: fails alone, passes after {', '.join(setters)} "
            f"(state-setter, bisected)")


def setter_hint(setters: list[str]) -> str:
    return (f"set up what the test needs in a fixture instead of relying on "
            f"{', '.join(setters)} running first")


# -- race -------------------------------------------------------------------------------------

def background_fixture(fx: Facts) -> tuple[str | None, list[str]]:
    """The fixture whose background task or thread was alive when the test failed."""
    users = user_fixture_names(fx)
    for fa in anatomies(fx):
        tasks = sorted((t for t in fa.get("tasks_from_fixtures") or []
                        if t.get("fixture") in users),
                       key=lambda t: (not t.get("user"), t.get("test") != fx.nodeid))
        if tasks:
            t = tasks[0]
            return t["fixture"], [f"task {t['task']} created while `{t['fixture']}` was set up "
                                  f"was still pending when the test failed"]
    for fa in anatomies(fx):
        threads = fa.get("threads_from_fixtures") or []
        named = [(t.rsplit("`", 2)[-2], t) for t in threads if "`" in t]
        named = [nt for nt in named if nt[0] in users]
        if named:
            return named[0][0], [f"background thread alive at the failure: {named[0][1]}"]
    return None, []


def cross_worker_line(fx: Facts) -> str:
    return (f"fails when xdist workers run beside it ({fx.replay[0]}/{fx.replay[1]} replays), "
            f"passes with the same tests before it in one process "
            f"({fx.serial_replay[1]}/{fx.serial_replay[1]}): a resource shared across "
            f"processes")


def cross_worker_hint(fixture: str | None) -> str:
    return ("give each worker its own resource (tmp_path, or a name with the xdist worker "
            "id) instead of a fixed file path or port" + (f" in `{fixture}`" if fixture else ""))


def shared_lines(shared: Culprit | None) -> list[str]:
    """What the race's fixture hands every worker alike, when its value or set-up error
    showed it."""
    if shared is None:
        return []
    where = "" if shared.kind == "tmp" else f" ({shared.target})"
    what = "file in the temporary folder" if shared.kind == "tmp" else shared.kind
    return [f"`{shared.fixture}` hands every worker the same {what} {shared.detail}{where}"]


SAME_ORDER_LINE = "same order, different outcome: timing decides"
RACE_HINT = ("don't assume which of two concurrent events happens first: wait for the one "
             "you expect (e.g. read until the expected message type arrives, with a "
             "timeout) or synchronise the background work")
WORKERS_RACE_HINT = ("fails only with parallel workers: give each worker its own resource "
                     "(tmp_path / worker id instead of a fixed file path or port)")
WORKERS_RACE_LINE = ("fails only when xdist workers run in parallel: a resource shared "
                     "across processes")

# -- unknown ----------------------------------------------------------------------------------

UNKNOWN_HINT = "rerun with more --runs; see the failure messages above"
ORDER_UNKNOWN_HINT = ("its reproducer replays the order it failed in: drop tests from the "
                      "start of it to find which one breaks it, then reset what that test "
                      "changes")


def order_unknown_line(fx: Facts, unproven: list[str], workers_only: bool) -> str:
    """Order-dependent, but no polluter proven: why not."""
    if unproven:
        why = (f"{', '.join(unproven)} (bisected) made it fail only "
               f"{fx.verified[0]}/{fx.verified[1]} times run before it")
    elif fx.searched and fx.search_cut:
        why = (f"bisecting the {len(fx.searched)} test(s) before it named none in "
               f"{fx.search_cut} runs, its bound for this suite: it may take three or more of "
               "them together, or an effect that comes and goes")
    elif fx.searched:
        why = (f"bisecting the {len(fx.searched)} test(s) before it named none: it may "
               "take several of them together")
    elif workers_only:
        why = "it failed only with xdist workers, not bisected"
    else:
        why = "not bisected"
    return ("order-dependent: never failed first in a fresh process, failed every time an "
            f"order it failed in ran again; no single test before it proven to break it "
            f"({why})")


def unknown_line(fx: Facts) -> str:
    """Nothing concluded: what the follow-ups came to, in words the lines after it show."""
    first, later, replay = fx.alone_first, fx.alone_later, fx.replay
    if first[1] and first[0] == first[1]:
        return (f"no rule matched: it failed alone every time ({first[0]}/{first[1]} first "
                f"runs in a fresh process) yet passed in {len(fx.good)} sweep run(s), and "
                "no test run before it was shown to make it pass")
    if not (first[1] or replay[1] or fx.suspect_run[1]):
        return ("no rule matched: no follow-up run showed its outcome (not run alone, its "
                "failing order not replayed)")
    if not (first[0] or later[0] or replay[0] or fx.suspect_run[0]):
        return ("no rule matched: not reproduced: it never failed in a follow-up run "
                "(alone, its failing order replayed, after its suspects)")
    return "no rule matched what the follow-ups showed (below)"


# -- the finding ------------------------------------------------------------------------------

def confidence(f: Finding, lo: float, hi: float, verified: tuple[int, int]) -> str:
    k, n = verified
    return (f"failure rate {f.failure_rate:.0%} (95% CI {lo:.0%}-{hi:.0%}, "
            f"{f.bad}/{f.runs - f.skipped} runs); reproducer failed {k}/{n}")


def unverified(reproduce: str, verified: tuple[int, int]) -> str:
    k, n = verified
    return f"{reproduce}  # not verified: failed {k}/{n}"


def following_up(n: int) -> str:
    return (f"following up {n} flaky test(s): alone, suspects, "
            "bisection, reproducers")


# -- a test that failed every sweep run ----------------------------------------------------

def rechecking(n: int) -> str:
    return f"trying {n} run(s) of tests that failed every run alone and in another order"


def recheck_line(f: Finding, fx: Facts) -> str:
    """What a test that failed every sweep run did alone and in another order."""
    head = f"failed every sweep run ({f.bad}/{f.runs - f.skipped})"
    tried = fx.alone_first
    alone = (f"alone: failed {tried[0]}/{tried[1]} first runs in a fresh process" if tried[1]
             else "not run alone (only the first 20 tests that failed every run are)")
    other = (f"in another order (a sweep run's, reversed): failed "
             f"{fx.other_order[0]}/{fx.other_order[1]}" if fx.other_order[1]
             else "not run in another order")
    passed = (tried[0] < tried[1]) or fx.other_order[0] < fx.other_order[1]
    verdict = ("it passed there: order-dependent, flaky, not failing" if passed
               else "it failed there too: failing")
    return f"{head}; {alone}; {other}: {verdict}"


# -- a failing test's setup problem -----------------------------------------------------------

MISCONFIG_HINTS = {
    "scope-mismatch": "give the async fixture a loop_scope at least as wide as its scope, e.g. "
                      "@pytest_asyncio.fixture(scope=\"module\", loop_scope=\"module\")",
    "not-supported": "install pytest-asyncio (or anyio's plugin) and mark the test "
                     "@pytest.mark.asyncio, or set asyncio_mode = auto",
    "strict-mode": "decorate async fixtures with @pytest_asyncio.fixture in strict mode",
}
