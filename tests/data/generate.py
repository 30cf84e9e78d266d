"""Regenerate the captured JUnit XML / event files under tests/data/.

Run once by hand (``.venv/bin/python tests/data/generate.py``) and commit the
output: the tests read these files as data and never run this script. Each
capture is a real pytest run with flakehunt's child plugin (or without it, for
``noprops``) on a tiny suite written below.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = Path(__file__).parent
INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"

PHASES = '''
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
    assert 1 == 2, "call boom"

def test_setup_error(broken_setup):
    pass

def test_skip():
    pytest.skip("not today")

@pytest.mark.xfail(reason="known")
def test_xfail():
    assert False

@pytest.mark.parametrize("p", ["a[b]"], ids=["a[b]"])
def test_p(p):
    pass
'''

XDIST = '''
import pytest

@pytest.mark.parametrize("i", range(4))
def test_a(i):
    pass

def test_b():
    pass
'''

REPEAT = '''
import pytest

def test_r():
    pass

@pytest.mark.parametrize("p", ["u", "v"])
def test_rp(p):
    pass
'''

NOPROPS = '''
import pytest

@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown boom")

class TestK:
    def test_m(self):
        pass

    def test_fail(self, broken_teardown):
        assert 0, "call boom"

@pytest.mark.parametrize("p", ["x::y"], ids=["x::y"])
def test_colon(p):
    pass

@pytest.mark.parametrize("p", ["a[b]"], ids=["a[b]"])
def test_bracket(p):
    pass
'''

CRASH = '''
import os

def test_ok():
    pass

def test_die():
    os._exit(3)

def test_ok2():
    pass
'''


def pytest_run(root: Path, out: Path, *args: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            f"--junitxml={out / 'junit.xml'}", "-o", "junit_family=xunit2", *args]
    subprocess.run(argv, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def capture(name: str, source: str, *args: str, plugin: bool = True, subdir: str = "",
            keep_events: bool = False) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "pytest.ini").write_text(INI)
        target = root / subdir / f"test_{name.replace('-', '_')}.py"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(source))
        out = root / "out"
        extra = ["-p", "flakehunt", f"--flakehunt-out={out}"] if plugin else ["-p", "no:flakehunt"]
        pytest_run(root, out, str(target.relative_to(root)), *extra, *args)
        if keep_events:
            dest = HERE / "runs" / name
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir(parents=True)
            for f in [out / "junit.xml", *sorted(out.glob("events-*.jsonl"))]:
                shutil.copy(f, dest / f.name)
        else:
            (HERE / "junit").mkdir(exist_ok=True)
            shutil.copy(out / "junit.xml", HERE / "junit" / f"{name}.xml")


def main() -> None:
    capture("phases", PHASES)
    capture("xdist", XDIST, "-n", "2")
    capture("repeat", REPEAT, "--count", "3", "--repeat-scope=function")
    capture("noprops", NOPROPS, plugin=False, subdir="sub")
    capture("xdist-crash", CRASH, "-n", "2", keep_events=True)


if __name__ == "__main__":
    main()
