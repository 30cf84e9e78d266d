from __future__ import annotations

import sys

import pytest
from helpers import make_suite

from flakehunt.collect import collect, relative_selection
from flakehunt.errors import NoTestsError, SuiteError


def test_relative_selection_from_a_subdirectory(tmp_path):
    (tmp_path / "tests" / "unit").mkdir(parents=True)
    (tmp_path / "tests" / "unit" / "test_a.py").write_text("")
    cwd = tmp_path / "tests"
    assert relative_selection(("unit/test_a.py",), cwd, tmp_path) == ("tests/unit/test_a.py",)
    assert relative_selection(("unit/test_a.py::TestK::test_x[a::b]",), cwd, tmp_path) == (
        "tests/unit/test_a.py::TestK::test_x[a::b]",)
    assert relative_selection(("unit",), cwd, tmp_path) == ("tests/unit",)


def test_relative_selection_without_arguments(tmp_path):
    (tmp_path / "sub").mkdir()
    assert relative_selection((), tmp_path, tmp_path) == ()
    assert relative_selection((), tmp_path / "sub", tmp_path) == ("sub",)


def test_relative_selection_keeps_what_is_not_a_path(tmp_path):
    (tmp_path / "test_a.py").write_text("")
    assert relative_selection(("pkg.module", "test_a.py"), tmp_path, tmp_path) == (
        "pkg.module", "test_a.py")
    assert relative_selection((str(tmp_path / "test_a.py"),), tmp_path / "..", tmp_path) == (
        "test_a.py",)


def test_collect_a_suite(pytester):
    make_suite(pytester, test_collect_sample="""
        import pytest
        def test_a(): pass
        @pytest.mark.parametrize("p", ["x[1]", "y"])
        def test_p(p): pass
        """)
    sub = pytester.path / "sub"
    sub.mkdir()
    got = collect(sys.executable, ("../test_collect_sample.py",), ("-k", "not test_a"), sub,
                  pytester.path / "collect")
    assert got.rootdir == pytester.path
    assert got.nodeids == ("test_collect_sample.py::test_p[x[1]]",
                           "test_collect_sample.py::test_p[y]")
    assert got.selection == ("test_collect_sample.py",)
    assert got.meta["worker"] == "main"


def test_collect_errors(pytester):
    make_suite(pytester, test_empty_sample="X = 1\n")
    with pytest.raises(NoTestsError):
        collect(sys.executable, ("test_empty_sample.py",), (), pytester.path, pytester.path / "c1")
    with pytest.raises(SuiteError, match="not found"):
        collect(sys.executable, ("nope.py",), (), pytester.path, pytester.path / "c2")
    with pytest.raises(SuiteError, match="interpreter not found"):
        collect(str(pytester.path / "no-python"), (), (), pytester.path, pytester.path / "c3")


def fake_python(tmp_path, output: str, code: int, executable: bool = True):
    path = tmp_path / "python"
    path.write_text(f"#!/bin/sh\ncat <<'END'\n{output}\nEND\nexit {code}\n")
    path.chmod(0o755 if executable else 0o644)
    return str(path)


@pytest.mark.parametrize("output, code, hint", [
    ("/x/python: No module named pytest", 1,
     "lacks pytest, pytest-xdist: run `.* -m pip install pytest pytest-xdist`"),
    ("ERROR: usage: pytest [options]\npytest: error: unrecognized arguments: "
     "--numprocesses=0", 4, "lacks pytest-xdist: run"),
    ("ERROR: usage: pytest [options]\npytest: error: unrecognized arguments: "
     "--flakehunt-out=/w/collect", 4, "cannot load flakehunt's plugin"),
])
def test_collect_explains_a_broken_environment(tmp_path, output, code, hint):
    python = fake_python(tmp_path, output, code)
    with pytest.raises(SuiteError, match=hint) as exc:
        collect(python, (), (), tmp_path, tmp_path / "collect")
    assert python in str(exc.value)  # the hint names the interpreter to fix


def test_collect_with_a_python_that_is_not_executable(tmp_path):
    python = fake_python(tmp_path, "", 0, executable=False)
    with pytest.raises(SuiteError, match="not executable"):
        collect(python, (), (), tmp_path, tmp_path / "collect")


def test_collect_without_collected_json_is_a_suite_error(tmp_path):
    python = fake_python(tmp_path, "all fine, honest", 0)
    with pytest.raises(SuiteError, match="could not collect"):
        collect(python, (), (), tmp_path, tmp_path / "collect")
