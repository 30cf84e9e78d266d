"""The child side of naming a culprit, in real pytest runs (pytester, in-process): a
unittest class's set-up named by class and method, state the snapshot now sees (class
attributes), ownership through a container, and --flakehunt-reset putting one item back."""

from __future__ import annotations

import json

import pytest
from helpers import make_suite

pytestmark = pytest.mark.usefixtures("keep_random_state")

UNITTEST_SUITE = """
    import unittest

    class Cache:
        entries = {}

    class TestWarm(unittest.TestCase):
        def test_warm(self):
            Cache.entries["home"] = "<html>"

    class TestCold(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
            cls.cache = Cache

        def test_cold(self):
            self.assertEqual(self.cache.entries, {})
    """


def ends(out) -> dict[str, dict]:
    lines = (out / "events-main.jsonl").read_text().splitlines()
    return {r["id"]: r for r in map(json.loads, lines) if r.get("e") == "end"}


def test_unittest_set_up_is_named_by_class_and_method_and_class_state_is_diffed(pytester):
    make_suite(pytester, test_cache=UNITTEST_SUITE)
    out = pytester.path / "out"
    pytester.runpytest("-p", "no:randomly", f"--flakehunt-out={out}").assert_outcomes(
        passed=1, failed=1)
    recs = ends(out)
    warm = recs["test_cache.py::TestWarm::test_warm"]
    cold = recs["test_cache.py::TestCold::test_cold"]
    assert [c["what"] for c in warm["state"]] == ["test_cache.Cache.entries"]
    fixtures = {f["name"]: f for f in cold["fixtures"]}
    assert fixtures["TestCold.setUpClass"]["user"] is True
    assert fixtures["TestCold.setUpClass"]["loc"].startswith("test_cache.py:")
    assert not any(name.startswith("_unittest") for name in fixtures)


def test_reset_puts_the_item_back_before_the_named_test_only(pytester):
    make_suite(pytester, test_cache=UNITTEST_SUITE)
    out = pytester.path / "out"
    request = {"kind": "global", "target": "test_cache.Cache.entries",
               "before": "test_cache.py::TestCold::test_cold"}
    pytester.runpytest("-p", "no:randomly", f"--flakehunt-out={out}",
                       f"--flakehunt-reset={json.dumps(request)}").assert_outcomes(passed=2)
    bad = pytester.runpytest("-p", "no:randomly", "--flakehunt-reset={")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    assert "flakehunt: --flakehunt-reset: not JSON" in bad.stderr.str()


def test_a_holder_in_a_module_fixtures_dict_is_that_fixtures(pytester):
    make_suite(pytester, conftest="""
        import pytest

        @pytest.fixture(scope="module")
        def registry():
            return {}
        """, test_send="""
        import asyncio
        import pytest

        class Client:
            def __init__(self):
                self._loop = None

            async def send(self, message):
                if self._loop is None:
                    self._loop = asyncio.get_running_loop()
                done = self._loop.create_future()
                self._loop.call_soon(done.set_result, message)
                return await done

        @pytest.mark.asyncio
        async def test_a(registry):
            assert await registry.setdefault("c", Client()).send(1) == 1

        @pytest.mark.asyncio
        async def test_b(registry):
            assert await registry.setdefault("c", Client()).send(2) == 2
        """)
    out = pytester.path / "out"
    pytester.runpytest("-p", "no:randomly", f"--flakehunt-out={out}").assert_outcomes(
        passed=1, failed=1)
    (anatomy,) = [f for f in ends(out)["test_send.py::test_b"]["failures"]]
    holder = anatomy["holders"][0]
    assert (holder["object"], holder["attribute"], holder["fixture"]) == \
        ("Client", "_loop", "registry")
    assert holder["fixture_path"] == "['c']"
    assert "_function_scoped_runner" not in anatomy["involved"]


SHARED_CONSTANTS = {
    "fh_app": """
        ENABLED = True
        REGISTRY = {}
        CLIENT = None
        LOOP = None
        """,
    "conftest": """
        import pytest
        import fh_app


        @pytest.fixture
        def flag():
            return True


        @pytest.fixture
        def registry():
            return fh_app.REGISTRY
        """,
    "test_shared_constants": """
        import fh_app


        def test_set(flag, registry):
            fh_app.CLIENT = "client"
            registry["k"] = 1
            assert False
        """,
}


def test_a_shared_constant_is_nobody_s_global_and_hides_no_other_name(pytester):
    """None, True, small ints and interned strings are one object wherever they appear:
    a fixture returning True does not hand the test the module's ENABLED = True, and
    CLIENT = None does not hide LOOP = None from the snapshot (which then saw LOOP
    appear, a change nobody made, once CLIENT changed)."""
    make_suite(pytester, **SHARED_CONSTANTS)
    out = pytester.path / "out"
    pytester.runpytest("-p", "no:randomly", f"--flakehunt-out={out}").assert_outcomes(
        failed=1)
    end = ends(out)["test_shared_constants.py::test_set"]
    assert sorted(c["what"] for c in end["state"]) == ["fh_app.CLIENT", "fh_app.REGISTRY"]
    fixtures = {f["name"]: f for f in end["fixtures"]}
    assert fixtures["registry"]["global"] == "fh_app.REGISTRY"  # ownership still seen
    assert "global" not in fixtures["flag"]


PARSED_ONCE = {
    "fh_lib": """
        def check(value):
            assert value == 0, f"not zero: {value}"
        """,
    "conftest": """
        import ast, os

        parse = ast.parse
        COUNT = []


        def counting(source, filename="<unknown>", *args, **kwargs):
            if filename == "source":  # pytest's parse of a traceback entry's file
                COUNT.append(1)
            return parse(source, filename, *args, **kwargs)


        ast.parse = counting


        def pytest_sessionfinish(session):
            with open(os.environ["FH_PARSES"], "w") as fh:
                fh.write(str(len(COUNT)))
        """,
    "test_parsed_once": """
        import pytest
        import fh_lib


        @pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
        def test_check(n):
            fh_lib.check(n)
        """,
}


def test_a_run_parses_each_source_once_and_reports_the_same(pytester, monkeypatch):
    """With --flakehunt-out each file a traceback shows is parsed once a run, not once
    a failure, and every failure's text in the JUnit XML is the same as without it."""
    import xml.etree.ElementTree as ET

    make_suite(pytester, **PARSED_ONCE)
    texts, parses = {}, {}
    for how in ("plain", "flakehunt"):
        monkeypatch.setenv("FH_PARSES", str(pytester.path / f"{how}.parses"))
        extra = [f"--flakehunt-out={pytester.path / 'out'}"] if how == "flakehunt" else []
        pytester.runpytest_subprocess("-p", "flakehunt", "-p", "no:randomly",
                                      f"--junitxml={how}.xml", *extra)
        root = ET.parse(pytester.path / f"{how}.xml").getroot()
        texts[how] = [(case.get("name"), f.get("message"), f.text)
                      for case in root.iter("testcase") for f in case.iter("failure")]
        parses[how] = int((pytester.path / f"{how}.parses").read_text())
    assert len(texts["plain"]) == 5 and texts["flakehunt"] == texts["plain"]
    # pytest parsed the test module, fh_lib and the failing function's source (all of
    # fh_lib here) for each failure; a run with the plugin, each text once
    assert parses == {"plain": 15, "flakehunt": 2}
