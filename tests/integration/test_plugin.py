"""The child plugin (flakehunt/plugin.py, and the recorder and probes it registers when
enabled) inside real pytest runs made with pytester.

The plugin is installed through its pytest11 entry point, so every pytester run
loads it: these tests check what it does with and without its options.
"""

from __future__ import annotations

import json
import re
import time
from types import SimpleNamespace

import pytest
from helpers import make_suite

from flakehunt import ordering, probes, recorder, testid
from flakehunt.junit import read_junit
from flakehunt.model import Outcome

pytestmark = pytest.mark.usefixtures("keep_random_state")

ORDER_SUITE = {
    "test_order_a": """
        def test_one(): pass
        def test_two(): pass
        class TestK:
            def test_m1(self): pass
            def test_m2(self): pass
        """,
    "test_order_b": """
        import pytest
        @pytest.mark.parametrize("p", ["x", "y", "z"])
        def test_p(p): pass
        def test_last(): pass
        """,
}


def collected_ids(result) -> list[str]:
    return [line for line in result.outlines if "::" in line and " " not in line]


def events(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- inert -----------------------------------------------------------------------
def test_inert_without_options(pytester):
    make_suite(pytester, test_inert_sample="""
        import random
        random.seed(99)
        EXPECTED = random.Random(99).random()

        def test_b(request, pytestconfig):
            pm = pytestconfig.pluginmanager
            assert pm.has_plugin("flakehunt")  # loaded...
            assert pm.get_plugin("flakehunt-recorder") is None  # ...but inert
            assert pm.get_plugin("flakehunt-perturber") is None
            assert request.node.user_properties == []
            assert random.random() == EXPECTED  # random was not re-seeded

        def test_a(request):
            assert request.node.user_properties == []
        """)
    result = pytester.runpytest("-p", "no:cacheprovider", "--junitxml=junit.xml")
    result.assert_outcomes(passed=2)
    assert list(pytester.path.rglob("events-*.jsonl")) == []
    assert list(pytester.path.rglob("collected.json")) == []
    assert "flakehunt_" not in (pytester.path / "junit.xml").read_text()
    collect = pytester.runpytest("--collect-only", "-q")
    assert collected_ids(collect) == ["test_inert_sample.py::test_b",
                                      "test_inert_sample.py::test_a"]


def test_inert_plugin_stays_cheap_in_a_fresh_process(pytester):
    """Merely installed, the plugin imports no probes and patches nothing."""
    make_suite(pytester, test_cheap_sample="""
        import asyncio, sys

        def test_cheap(pytestconfig):
            assert pytestconfig.pluginmanager.has_plugin("flakehunt")
            assert "flakehunt.probes" not in sys.modules
            assert "flakehunt.recorder" not in sys.modules
            assert asyncio.BaseEventLoop.__init__.__module__ == "asyncio.base_events"
        """)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_enabled_run_restores_what_it_patched(pytester):
    import asyncio
    import logging

    original = asyncio.BaseEventLoop.__init__
    handlers = list(logging.getLogger("asyncio").handlers)
    make_suite(pytester, test_patch_sample="""
        import asyncio

        def test_loop():
            loop = asyncio.new_event_loop()
            loop.close()
        """)
    pytester.runpytest(f"--flakehunt-out={pytester.path / 'out'}").assert_outcomes(passed=1)
    assert asyncio.BaseEventLoop.__init__ is original
    assert logging.getLogger("asyncio").handlers == handlers


def test_options_are_registered(pytester):
    make_suite(pytester)
    result = pytester.runpytest("--help")
    for option in ("--flakehunt-out", "--flakehunt-order", "--flakehunt-random-seed",
                   "--flakehunt-cpus"):
        result.stdout.fnmatch_lines([f"*{option}*"])


# -- recording ---------------------------------------------------------------------
RECORD_SUITE = """
    import pytest

    @pytest.fixture
    def broken_teardown():
        yield
        raise RuntimeError("teardown boom")

    @pytest.fixture
    def broken_setup():
        raise RuntimeError("setup boom")

    def test_pass():
        pass

    def test_call_and_teardown(broken_teardown):
        assert 0, "call boom"

    def test_setup_error(broken_setup):
        pass

    def test_skip():
        pytest.skip("no")

    def test_chain():
        try:
            raise KeyError("inner")
        except KeyError as exc:
            raise ValueError("outer") from exc

    def test_group():
        raise ExceptionGroup("many", [OSError("first"), TypeError("second")])

    def test_user_props(request):
        assert [name for name, _ in request.node.user_properties] == [
            "flakehunt_nodeid", "flakehunt_worker", "flakehunt_position"]
    """


def test_recorder_writes_events_and_collected(pytester):
    make_suite(pytester, test_record_sample=RECORD_SUITE)
    out = pytester.path / "out"
    result = pytester.runpytest(f"--flakehunt-out={out}")
    result.assert_outcomes(passed=2, failed=3, errors=2, skipped=1)

    records = events(out / "events-main.jsonl")
    assert records[0]["e"] == "session" and records[0]["worker"] == "main"
    assert records[0]["order"] == "declared" and records[0]["random_seed"] is None
    assert records[-1]["e"] == "finish"
    body = records[1:-1]
    assert [r["e"] for r in body] == ["start", "end"] * 7
    assert [r["pos"] for r in body[::2]] == list(range(1, 8))
    assert all(s["id"] == e["id"] and s["pos"] == e["pos"]
               for s, e in zip(body[::2], body[1::2], strict=True))
    ends = {r["id"].split("::")[1]: r for r in body[1::2]}
    assert ends["test_pass"]["outcome"] == "passed" and ends["test_pass"]["failures"] == []
    both = ends["test_call_and_teardown"]
    assert (both["outcome"], both["phase"]) == ("failed", "call")
    assert [f["phase"] for f in both["failures"]] == ["call", "teardown"]
    assert both["failures"][1]["chain"][0] == {"type": "RuntimeError", "module": "builtins",
                                               "message": "teardown boom"}
    assert (ends["test_setup_error"]["outcome"], ends["test_setup_error"]["phase"]) == (
        "error", "setup")
    assert (ends["test_skip"]["outcome"], ends["test_skip"]["phase"]) == ("skipped", "call")
    chain = ends["test_chain"]["failures"][0]["chain"]
    assert [(c["type"], c["message"]) for c in chain] == [("ValueError", "outer"),
                                                         ("KeyError", "'inner'")]
    group = ends["test_group"]["failures"][0]["chain"]
    assert [c["type"] for c in group] == ["ExceptionGroup", "OSError", "TypeError"]
    assert "outer" in ends["test_chain"]["failures"][0]["text"]

    collected = json.loads((out / "collected.json").read_text())
    assert collected["rootdir"] == str(pytester.path)
    assert collected["nodeids"] == [f"test_record_sample.py::{name}" for name in (
        "test_pass", "test_call_and_teardown", "test_setup_error", "test_skip", "test_chain",
        "test_group", "test_user_props")]
    assert not (out / "collected.json.tmp").exists()


def test_collect_only_writes_collected_json(pytester):
    make_suite(pytester, **ORDER_SUITE)
    out = pytester.path / "out"
    result = pytester.runpytest("--collect-only", "-q", f"--flakehunt-out={out}",
                                "--flakehunt-order=reverse")
    assert result.ret == 0
    collected = json.loads((out / "collected.json").read_text())
    assert collected["nodeids"] == collected_ids(result)
    assert collected["order"] == "reverse"
    assert [r["e"] for r in events(out / "events-main.jsonl")] == ["session", "finish"]
    assert not (out / "tests-started").exists()  # no test ran: a deferred throttle waits


def test_first_test_marks_the_run_started(pytester):
    make_suite(pytester, **ORDER_SUITE)
    out = pytester.path / "out"
    pytester.runpytest(f"--flakehunt-out={out}", "--flakehunt-evidence=off")
    assert (out / "tests-started").exists()


def test_await_holds_the_first_test_until_the_profile_is_applied(pytester, monkeypatch):
    make_suite(pytester, **ORDER_SUITE)
    monkeypatch.setattr(recorder, "AWAIT_LIMIT", 3.0)  # far above a run's own time, even busy
    out = pytester.path / "out"
    start = time.monotonic()
    pytester.runpytest(f"--flakehunt-out={out}", "--flakehunt-await").assert_outcomes(passed=8)
    assert time.monotonic() - start >= 3.0  # nobody applied it: held until the limit
    out.mkdir(exist_ok=True)
    (out / "tests-started.applied").touch()
    start = time.monotonic()
    pytester.runpytest(f"--flakehunt-out={out}", "--flakehunt-await").assert_outcomes(passed=8)
    assert time.monotonic() - start < 3.0


# -- ordering ------------------------------------------------------------------------
def declared_ids(pytester) -> list[str]:
    return collected_ids(pytester.runpytest("--collect-only", "-q"))


def test_hash_order_changes_order_deterministically(pytester):
    make_suite(pytester, **ORDER_SUITE)
    declared = declared_ids(pytester)
    assert len(declared) == 8
    for seed in (1, 2):
        expected = ordering.apply_order(f"hash:{seed}", declared)
        assert expected != declared  # these seeds do move tests (a pure, fixed computation)
        first = collected_ids(pytester.runpytest("--collect-only", "-q",
                                                 f"--flakehunt-order=hash:{seed}"))
        again = collected_ids(pytester.runpytest("--collect-only", "-q",
                                                 f"--flakehunt-order=hash:{seed}"))
        assert first == again == expected


def test_reverse_and_declared_orders(pytester):
    make_suite(pytester, **ORDER_SUITE)
    declared = declared_ids(pytester)
    reverse = collected_ids(pytester.runpytest("--collect-only", "-q",
                                               "--flakehunt-order=reverse"))
    assert reverse == list(reversed(declared))
    same = collected_ids(pytester.runpytest("--collect-only", "-q",
                                            "--flakehunt-order=declared"))
    assert same == declared


def test_order_is_applied_to_execution(pytester):
    make_suite(pytester, **ORDER_SUITE)
    out = pytester.path / "out"
    pytester.runpytest(f"--flakehunt-out={out}", "--flakehunt-order=hash:1").assert_outcomes(
        passed=8)
    ran = [r["id"] for r in events(out / "events-main.jsonl") if r["e"] == "start"]
    assert ran == ordering.apply_order("hash:1", declared_ids(pytester))


@pytest.mark.parametrize("bad", ["bogus", "hash:x", "hash"])
def test_bad_order_is_a_usage_error(pytester, bad):
    make_suite(pytester, test_bad_sample="def test_a(): pass\n")
    result = pytester.runpytest(f"--flakehunt-order={bad}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*flakehunt: bad order*"])


# -- random seeding --------------------------------------------------------------------
RANDOM_SUITE = """
    import random

    def test_first():
        print("VALUE first", repr(random.random()))

    def test_second():
        print("VALUE second", repr(random.random()))
    """


def values(result) -> dict[str, str]:
    out = {}
    for line in result.outlines:
        m = re.search(r"VALUE (\S+) (\S+)", line)
        if m:
            out.setdefault(m.group(1), []).append(m.group(2))
    return out


def test_random_seed_makes_random_reproducible(pytester):
    make_suite(pytester, test_random_sample=RANDOM_SUITE)
    a = values(pytester.runpytest("-s", "--flakehunt-random-seed=5"))
    b = values(pytester.runpytest("-s", "--flakehunt-random-seed=5"))
    c = values(pytester.runpytest("-s", "--flakehunt-random-seed=6"))
    assert set(a) == {"first", "second"}
    assert a == b
    assert a["first"] != c["first"] and a["second"] != c["second"]
    assert a["first"] != a["second"]  # seeded per test, not once per run


def test_random_seed_does_not_depend_on_order(pytester):
    make_suite(pytester, test_random_sample=RANDOM_SUITE)
    a = values(pytester.runpytest("-s", "--flakehunt-random-seed=5"))
    b = values(pytester.runpytest("-s", "--flakehunt-random-seed=5",
                                  "--flakehunt-order=reverse"))
    assert a == b


def test_random_seed_zero_is_applied(pytester):
    make_suite(pytester, test_random_sample=RANDOM_SUITE)
    a = values(pytester.runpytest("-s", "--flakehunt-random-seed=0"))
    b = values(pytester.runpytest("-s", "--flakehunt-random-seed=0"))
    assert a == b


# -- pytest-repeat ------------------------------------------------------------------------
REPEAT_SUITE = """
    import random
    import pytest

    def test_plain():
        print("VALUE plain", repr(random.random()))

    @pytest.mark.parametrize("p", ["u", "v-1"])
    def test_param(p):
        print("VALUE " + p, repr(random.random()))
    """


def test_repeat_base_nodeid_strips_the_repeat_suffix(pytester):
    make_suite(pytester, test_repeat_sample=REPEAT_SUITE)
    out = pytester.path / "out"
    result = pytester.runpytest("-s", "--count=3", "--repeat-scope=function",
                                f"--flakehunt-out={out}", "--flakehunt-random-seed=11")
    result.assert_outcomes(passed=9)
    ends = [r for r in events(out / "events-main.jsonl") if r["e"] == "end"]
    ids = [r["id"] for r in ends]
    assert sorted(set(ids)) == ["test_repeat_sample.py::test_param[u]",
                                "test_repeat_sample.py::test_param[v-1]",
                                "test_repeat_sample.py::test_plain"]
    assert all(ids.count(i) == 3 for i in set(ids))
    assert {r["nodeid"] for r in ends} >= {"test_repeat_sample.py::test_plain[1-3]",
                                           "test_repeat_sample.py::test_param[u-2-3]"}
    # every repetition of a test gets the same random sequence: seeded by the base id
    vals = values(result)
    assert set(vals) == {"plain", "u", "v-1"}
    assert all(len(v) == 3 and len(set(v)) == 1 for v in vals.values())


def test_collected_json_uses_base_ids_under_repeat(pytester):
    make_suite(pytester, test_count_sample="def test_a():\n    pass\n")
    out = pytester.path / "out"
    pytester.runpytest("--collect-only", "-q", "--count=2", f"--flakehunt-out={out}")
    collected = json.loads((out / "collected.json").read_text())
    assert collected["nodeids"] == ["test_count_sample.py::test_a"]


def item(nodeid: str, count: int | None, step: int | None = None, **params):
    if step is not None:
        params["__pytest_repeat_step_number"] = step
    callspec = SimpleNamespace(params=params) if params else None
    config = SimpleNamespace(getoption=lambda name, default=None: count)
    return SimpleNamespace(nodeid=nodeid, callspec=callspec, config=config)


@pytest.mark.parametrize("nodeid, count, step, base", [
    ("t.py::test_a[2-3]", 3, 1, "t.py::test_a"),
    ("t.py::K::test_a[1-10]", 10, 0, "t.py::K::test_a"),
    ("t.py::test_p[u-1-3]", 3, 0, "t.py::test_p[u]"),
    ("t.py::test_p[1-3-u]", 3, 0, "t.py::test_p[u]"),
    ("t.py::test_p[a-2-3-b]", 3, 1, "t.py::test_p[a-b]"),
    ("t.py::test_p[x-1-3-1-3]", 3, 0, "t.py::test_p[x-1-3]"),  # the param looks like one
    ("t.py::test_p[a[b]-3-3]", 3, 2, "t.py::test_p[a[b]]"),
    ("t.py::test_p[u]", None, None, "t.py::test_p[u]"),  # not repeated
    ("t.py::test_q", None, None, "t.py::test_q"),
])
def test_base_nodeid(nodeid, count, step, base):
    assert testid.base_nodeid(item(nodeid, count, step)) == base


# -- --flakehunt-count: the plugin's own repetition ----------------------------------------
KINDS_SUITE = """
    import os
    import unittest

    import pytest

    LOG = os.path.join(os.path.dirname(__file__), "log.txt")


    def log(what):
        with open(LOG, "a") as fh:
            fh.write(what + "\\n")


    @pytest.fixture(scope="module")
    def mod():
        log("module-setup")
        yield
        log("module-teardown")


    @pytest.fixture
    def fn():
        log("function-setup")
        yield
        log("function-teardown")


    @pytest.mark.parametrize("p", ["a", "b-1"])
    def test_param(p, mod, fn):
        log("param " + p)


    class TestCase(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
            log("setUpClass")

        @classmethod
        def tearDownClass(cls):
            log("tearDownClass")

        def setUp(self):
            log("setUp")

        def test_u(self):
            log("unittest")


    class TestAsync(unittest.IsolatedAsyncioTestCase):
        async def test_a(self):
            log("async")
    """


def test_count_repeats_every_kind_under_its_own_id(pytester):
    make_suite(pytester, test_kinds_sample=KINDS_SUITE)
    out = pytester.path / "out"
    result = pytester.runpytest("-p", "no:cacheprovider", "test_kinds_sample.py::test_param[b-1]",
                                "test_kinds_sample.py::TestCase", "test_kinds_sample.py::TestAsync",
                                "--flakehunt-count=3", f"--flakehunt-out={out}",
                                f"--junitxml={out / 'junit.xml'}", "-o", "junit_family=xunit2")
    result.assert_outcomes(passed=9)
    ids = [f"test_kinds_sample.py::{t}" for t in ("test_param[b-1]", "TestCase::test_u",
                                                   "TestAsync::test_a")]
    want = [(i, n) for i in ids for n in range(3)]
    results = read_junit(out / "junit.xml")
    assert [(r.nodeid, r.position) for r in results] == [
        (i, 3 * ids.index(i) + n + 1) for i, n in want]
    ends = [r for r in events(out / "events-main.jsonl") if r["e"] == "end"]
    assert [(r["id"], r["nodeid"], r["pos"]) for r in ends] == [
        (i, i, 3 * ids.index(i) + n + 1) for i, n in want]
    # each execution a whole protocol (function scope anew); wider scopes set up once
    assert (pytester.path / "log.txt").read_text().split("\n")[:-1] == [
        "module-setup", *["function-setup", "param b-1", "function-teardown"] * 3,
        "setUpClass", *["setUp", "unittest"] * 3, "tearDownClass", *["async"] * 3,
        "module-teardown"]


def test_count_stops_with_maxfail_and_does_nothing_at_one(pytester):
    make_suite(pytester, test_stop_sample="""
        def test_fails():
            assert 0
        def test_after():
            pass
        """)
    pytester.runpytest("-x", "--flakehunt-count=4").assert_outcomes(failed=1)
    pytester.runpytest("--flakehunt-count=1").assert_outcomes(failed=1, passed=1)
    pytester.runpytest("--flakehunt-count=2").assert_outcomes(failed=2, passed=2)


def test_count_under_xdist_repeats_in_the_worker(pytester):
    make_suite(pytester, test_xcount_sample="""
        import pytest
        @pytest.mark.parametrize("i", range(4))
        def test_w(i):
            pass
        """)
    out = pytester.path / "out"
    result = pytester.runpytest_subprocess(
        "-n", "2", "-p", "no:cacheprovider", "--flakehunt-count=3", f"--flakehunt-out={out}",
        f"--junitxml={out / 'junit.xml'}", "-o", "junit_family=xunit2")
    result.assert_outcomes(passed=12)
    results = read_junit(out / "junit.xml")
    for i in range(4):
        mine = [r for r in results if r.nodeid == f"test_xcount_sample.py::test_w[{i}]"]
        assert len(mine) == 3 and len({r.worker for r in mine}) == 1  # in a row, one worker
        positions = sorted(r.position or 0 for r in mine)
        assert positions == list(range(positions[0], positions[0] + 3))
    assert not [r for r in events(out / "events-main.jsonl") if r["e"] == "end"]


# -- JUnit properties --------------------------------------------------------------------
def test_user_properties_reach_the_junit_xml(pytester):
    make_suite(pytester, test_props_sample="""
        import pytest
        def test_a(): pass
        @pytest.mark.parametrize("p", ["a[b]", "c"])
        def test_p(p): pass
        def test_f(): assert 0
        """)
    out = pytester.path / "out"
    pytester.runpytest(f"--flakehunt-out={out}", f"--junitxml={out / 'junit.xml'}",
                       "-o", "junit_family=xunit2")
    results = read_junit(out / "junit.xml")
    assert [(r.nodeid, r.worker, r.position) for r in results] == [
        ("test_props_sample.py::test_a", "main", 1),
        ("test_props_sample.py::test_p[a[b]]", "main", 2),
        ("test_props_sample.py::test_p[c]", "main", 3),
        ("test_props_sample.py::test_f", "main", 4),
    ]
    assert results[-1].outcome is Outcome.FAILED


XDIST_SUITE = """
    import pathlib, random
    import pytest

    @pytest.mark.parametrize("i", range(6))
    def test_w(i):
        d = pathlib.Path(__file__).parent / "vals"
        d.mkdir(exist_ok=True)
        (d / f"{i}.txt").write_text(repr(random.random()))
    """


def test_xdist_properties_workers_and_random_seed(pytester):
    make_suite(pytester, test_xdist_sample=XDIST_SUITE)
    out = pytester.path / "out"
    result = pytester.runpytest_subprocess(
        "-n", "2", "-p", "no:cacheprovider", f"--flakehunt-out={out}",
        f"--junitxml={out / 'junit.xml'}", "-o", "junit_family=xunit2",
        "--flakehunt-random-seed=3", "--flakehunt-cpus=0")
    result.assert_outcomes(passed=6)
    results = read_junit(out / "junit.xml")
    assert sorted(r.nodeid for r in results) == [f"test_xdist_sample.py::test_w[{i}]"
                                                 for i in range(6)]
    assert {r.worker for r in results} == {"gw0", "gw1"}
    for worker in ("gw0", "gw1"):
        mine = sorted(r.position for r in results if r.worker == worker)
        assert mine == list(range(1, len(mine) + 1))
        sessions = [r for r in events(out / f"events-{worker}.jsonl") if r["e"] == "session"]
        assert sessions[0]["cpus"]["requested"] == [0]
    xdist_values = {p.name: p.read_text() for p in (pytester.path / "vals").iterdir()}

    # the same seed without xdist gives every test the same random values
    plain = pytester.runpytest("--flakehunt-random-seed=3", "-p", "no:cacheprovider")
    plain.assert_outcomes(passed=6)
    assert {p.name: p.read_text() for p in (pytester.path / "vals").iterdir()} == xdist_values
    assert len(set(xdist_values.values())) == 6


# -- helpers -------------------------------------------------------------------------------
def test_exception_chain_handles_cycles_and_limits():
    a, b = ValueError("a"), KeyError("b")
    a.__context__, b.__context__ = b, a  # a cycle
    assert [c["type"] for c in probes.exception_chain(a)] == ["ValueError", "KeyError"]
    assert probes.exception_chain(None) == []
    deep = ValueError("0")
    for i in range(1, 30):
        new = ValueError(str(i))
        new.__cause__ = deep
        deep = new
    assert len(probes.exception_chain(deep, limit=12)) == 12
    long = probes.exception_chain(RuntimeError("x" * 5000))[0]["message"]
    assert len(long) == 1000


def test_cut_keeps_head_and_tail():
    text = "H" * 100 + "M" * 10_000 + "T" * 100
    short = recorder.cut(text, limit=1000)
    assert short.startswith("H" * 100) and short.endswith("T" * 100)
    assert "characters cut" in short and len(short) < 1100
    assert recorder.cut("small", limit=1000) == "small"
