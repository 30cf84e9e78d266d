"""The parent <-> child contract, importable without pytest.

flakehunt (the parent) starts each child ``pytest`` with its plugin
(``-p flakehunt``) and reads back what the child wrote into the run's folder.
Everything both sides must agree on lives here and nowhere else: the child's
option names, the ``user_properties`` it tags every report with, the marker
files of the deferred-profile handshake, and the shape of every record the
child writes (:class:`EndRecord` and the records inside it). The child writes
these records as JSON lines; the parent reads them once, at the edge
(:func:`end_record`), into these typed shapes.

Keep this module free of pytest and of anything heavy: both sides import it.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict, Union, cast

# Runtime-evaluated annotations (the functional TypedDict, type aliases) spell unions
# with ``Union``: the child side runs on the suite's Python, 3.9 and later.

# -- the child's command-line options (the plugin's pytest_addoption) --------------------
OPT_OUT = "--flakehunt-out"
OPT_ORDER = "--flakehunt-order"
OPT_RANDOM_SEED = "--flakehunt-random-seed"
OPT_EVIDENCE = "--flakehunt-evidence"
OPT_CPUS = "--flakehunt-cpus"
OPT_BURNERS = "--flakehunt-burners"
OPT_JITTER = "--flakehunt-jitter"
OPT_SWITCH_INTERVAL = "--flakehunt-switch-interval"
OPT_SPLIT = "--flakehunt-split"
OPT_AWAIT = "--flakehunt-await"
OPT_COUNT = "--flakehunt-count"
#: a :class:`ResetRequest` as JSON: put one state item back right before one test
OPT_RESET = "--flakehunt-reset"

# -- user_properties on every report (travel through xdist into the JUnit XML) ----------
PROP_NODEID = "flakehunt_nodeid"
PROP_WORKER = "flakehunt_worker"
PROP_POSITION = "flakehunt_position"

# -- files in a run's folder ----------------------------------------------------------------
#: one JSON line per event, per pytest process: ``events-<worker>.jsonl``
EVENTS_PREFIX = "events-"
EVENTS_SUFFIX = ".jsonl"
#: written by the collecting child (``--collect-only``): a :class:`CollectedRecord`
COLLECTED = "collected.json"
#: created in the run's folder when its first test starts (a deferred profile waits for it)
TESTS_STARTED = "tests-started"
#: created by flakehunt once it has applied the deferred profile (see ``--flakehunt-await``)
PROFILE_APPLIED = "tests-started.applied"
#: what a run did that runs beside it could collide with (flakehunt.watch): one
#: :class:`SharedRecord` per JSON line, from every pytest process of the run
SHARED = "shared.jsonl"
#: a warm run's record of its xdist workers, a line each: "warm PID" or "fresh WHY"
#: (flakehunt.zygote)
WORKERS = "workers.txt"
#: how long a first test waits for flakehunt to apply the profile, at most (seconds)
AWAIT_LIMIT = 10.0
#: a failure's text is cut to this many characters by the child
TEXT_LIMIT = 8000

#: the xdist worker name of a run without xdist
MAIN_WORKER = "main"


def workers(text: str) -> dict[str, Any]:
    """How a warm run's xdist workers started (its WORKERS record): forked from its
    zygote (``warm``) or fresh interpreters, and why."""
    warm, why = 0, dict[str, int]()
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "warm":
            warm += 1
        elif kind == "fresh":
            why[rest] = why.get(rest, 0) + 1
    return {"warm": warm, "fresh": sum(why.values()), **({"fresh_why": why} if why else {})}


def events_file(worker: str) -> str:
    return f"{EVENTS_PREFIX}{worker}{EVENTS_SUFFIX}"


# -- what the child writes --------------------------------------------------------------------
class SharedRecord(TypedDict):
    """Something a run used that concurrent runs share (``shared.jsonl``).

    ``kind``: ``port`` (it bound a fixed port, ``what`` = ``host:port``), ``tree`` (it
    wrote ``what``, a path in the project's tree), ``local`` (it connected to a loopback
    ``host:port`` nothing in its process had bound: a service on this machine, or a
    server the run started in another process), ``remote`` (it reached or resolved an
    address off this machine). ``test``: the test running then, if any.
    """

    kind: Literal["port", "tree", "local", "remote"]
    what: str
    test: str


class ChainLink(TypedDict):
    """One exception of a failure's chain (causes, contexts, group members)."""

    type: str
    module: str
    message: str


class LoopFacts(TypedDict, total=False):
    """An event loop met in the failing frames, and who created it."""

    label: str
    closed: bool | None
    created_by_test: str | None
    created_in_phase: str | None
    created_by_fixture: str | None
    #: pytest's or a plugin's fixture whose set-up made it for ``created_by_fixture``
    created_via: str | None
    thread: str | None
    #: the local variable and function it was met as
    met_as: str


class Holder(TypedDict, total=False):
    """An object in a failing frame that keeps a foreign (closed or other test's) loop."""

    object: str
    attribute: str
    fixture: str | None
    fixture_path: str
    local: str
    loop: str
    #: no user fixture reaches it: pytest's or a plugin's fixture that handed it over
    route: str


class TaskInfo(TypedDict, total=False):
    """A task still pending at the failure, created while a fixture was set up."""

    task: str
    user: bool
    fixture: str
    #: pytest's or a plugin's fixture being set up when it was created
    via: str
    test: str | None
    phase: str | None
    #: short string constants of the task's coroutine code: what it may write
    writes: list[str]


class ReadFrom(TypedDict, total=False):
    """The value the failing line compares, as the test read it from a fixture's object
    (``msg = websocket.receive_json()``)."""

    local: str
    fixture: str
    call: str
    #: the constant key the failing line looks the value up by (``msg["type"]``), or ""
    key: str
    line: int
    #: no earlier call of ``call`` on the fixture's object in the test: its first read
    first: bool


class Anatomy(TypedDict, total=False):
    """Which fixtures, loops, tasks and threads one failure touched (phase included)."""

    phase: str
    raised_in_fixture: str | None
    #: fixture name -> how its object was met in a failing frame
    involved: dict[str, str]
    on_failing_line: list[str]
    loops: list[LoopFacts]
    foreign_loops: list[LoopFacts]
    holders: list[Holder]
    tasks_from_fixtures: list[TaskInfo]
    threads_from_fixtures: list[str]
    #: pytest's or a plugin's fixture -> how its value was met in a failing frame (the
    #: route an object came by, never a culprit)
    routes: dict[str, str]
    #: the names and short strings the project's code on the failing path refers to
    reads: list[str]
    read_from: ReadFrom


class FailureRecord(Anatomy, total=False):
    """One failing phase of a test, as the child writes it: the anatomy plus the
    exception chain and the report's text."""

    chain: list[ChainLink]
    text: str


#: one fixture of a test: set up for it (``fresh``) or reused (``cached_from`` the test
#: whose set-up created the value); ``loc`` (``path:line``), ``user`` (defined in the
#: project, not pytest's or a plugin's), ``global`` (the project global its value is),
#: ``loop_scope``, ``threads`` its set-up started, ``error`` its set-up raised.
#: ``resource``: what its value or set-up error shows it hands over that xdist workers
#: would share (:mod:`flakehunt.resources`; absent: nothing seen).
#: (Functional form: ``global`` is a keyword.)
Resource = TypedDict("Resource", {
    "kind": str, "value": str, "global": str, "module": str,
}, total=False)
FixtureEntry = TypedDict("FixtureEntry", {
    "name": str, "scope": str, "fresh": bool, "loc": str, "user": bool, "global": str,
    "loop_scope": str, "threads": list[str], "error": str, "cached_from": Union[str, None],  # noqa: UP007 - Python 3.9
    "resource": Resource,
}, total=False)


class StateChange(TypedDict, total=False):
    """State a test changed and did not restore (module globals, env, cwd...)."""

    what: str
    kind: str
    before: str
    after: str
    change: str
    #: the variables an ``env`` change added, removed or changed
    keys: list[str]
    #: on a polluter's change, read back by the parent: which test made it
    by: str


class ResetRequest(TypedDict, total=False):
    """What ``--flakehunt-reset`` puts back, and before which test (flakehunt.reset):
    ``kind`` and ``target`` as a :class:`StateChange` names the item (``env`` with its
    ``keys``; ``cwd``; ``logging`` a logger; ``cache`` an lru_cache function; ``patches``
    the started mock patches; ``module`` a reloaded module's globals; else a dotted path
    to a module global, attribute or class attribute)."""

    kind: str
    target: str
    keys: list[str]
    before: str


class LoopOrigin(TypedDict, total=False):
    """An event loop created during a test, stamped with who created it."""

    label: str
    test: str
    phase: str
    fixture: str
    via: str
    thread: str


Outcome = Literal["passed", "failed", "error", "skipped"]


class StartRecord(TypedDict):
    e: Literal["start"]
    id: str
    w: str
    pos: int
    t: float


class EndRecord(TypedDict, total=False):
    """One test execution, written when its protocol ends."""

    e: Literal["end"]
    #: the test id without pytest-repeat's part
    id: str
    #: the id pytest gave this execution
    nodeid: str
    w: str
    pos: int
    outcome: Outcome
    phase: str | None
    dur: float
    failures: list[FailureRecord]
    fixtures: list[FixtureEntry]
    state: list[StateChange]
    threads_left: list[str]
    asyncio_log: list[str]
    loops_created: list[LoopOrigin]


class ProcessFacts(TypedDict, total=False):
    """One pytest process: versions, seeds and what its perturbations applied
    (part of its :class:`SessionRecord` and of ``collected.json``)."""

    worker: str
    pid: int
    python: str
    pytest: str
    order: str
    random_seed: int | None
    cpus: dict[str, Any] | None
    perturb: dict[str, Any]


class SessionRecord(ProcessFacts, total=False):
    """The first line a pytest process writes: its :class:`ProcessFacts`."""

    e: Literal["session"]


class FinishRecord(TypedDict):
    """The last line a pytest process writes, when it ends normally."""

    e: Literal["finish"]
    t: float


#: one line of ``events-<worker>.jsonl``
EventRecord = Union[SessionRecord, StartRecord, EndRecord, FinishRecord]  # noqa: UP007 - 3.9


class CollectedRecord(ProcessFacts, total=False):
    """What the collecting child found (``collected.json``), with its process's facts."""

    rootdir: str
    nodeids: list[str]
    #: project fixtures named ``event_loop`` (dead since pytest-asyncio 1.0)
    dead_event_loop: list[str]
    #: what a warm parent may import for the runs (flakehunt.warm.preloadable)
    preload: dict[str, Any]


class Evidence(TypedDict, total=False):
    """What the parent keeps of a test's :class:`EndRecord`: the probes' findings,
    with each failure's anatomy (its text and chain go into the model's Failure)."""

    nodeid: str
    outcome: Outcome
    phase: str | None
    fixtures: list[FixtureEntry]
    state: list[StateChange]
    threads_left: list[str]
    asyncio_log: list[str]
    loops_created: list[LoopOrigin]
    failure_anatomy: list[Anatomy]


# -- reading, at the edge ----------------------------------------------------------------------
#: an end record's keys that are the execution's address, not evidence
ADDRESS_KEYS = ("e", "failures", "id", "w", "pos", "dur")


def end_record(raw: dict[str, Any]) -> EndRecord | None:
    """A decoded JSON line -> an end record, if it has the fields every one has."""
    if raw.get("e") != "end" or not isinstance(raw.get("id"), str) \
            or not isinstance(raw.get("w"), str) or not isinstance(raw.get("pos"), int):
        return None
    return cast(EndRecord, raw)


def evidence(rec: EndRecord) -> Evidence:
    """What classification needs of a record; the failure text is kept in Failure."""
    out = cast(Evidence, {k: v for k, v in rec.items() if k not in ADDRESS_KEYS})
    anatomy = [cast(Anatomy, {k: v for k, v in f.items() if k not in ("text", "chain")})
               for f in rec.get("failures") or ()]
    if anatomy:
        out["failure_anatomy"] = anatomy
    return out
