"""The code's shape, held by the suite itself (so `.ci/run` enforces it): the layers
(import-linter), the types (mypy), the style (ruff), the size limits, and a CLI
that starts without importing pytest."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "flakehunt"
#: the limits a newcomer can rely on: a module reads in one sitting, a function on a screen
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def tool(name: str) -> str:
    """A tool of this interpreter's environment (the dev extra installs them)."""
    path = Path(sys.executable).with_name(name)
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[dev]'")
    return found


def run(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "MYPY"))}
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env=env, check=False)


def test_the_layers_hold():
    out = run(tool("lint-imports"), "--no-cache")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def test_the_package_type_checks(tmp_path):
    out = run(sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy-cache"))
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


def test_the_style_holds():
    out = run(tool("ruff"), "check", "--no-cache", "flakehunt", "tests", "benchmarks")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


def oversized(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        name = path.relative_to(root.parent)
        lines = len(text.splitlines())
        if lines > MAX_MODULE_LINES:
            found.append(f"{name}: {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{name}:{node.lineno} {node.name}(): {length} lines")
    return found


def test_no_module_or_function_over_the_limits():
    assert oversized(PACKAGE) == []


def test_the_limits_are_measured(tmp_path):
    """The check above can fail: a long function and a long module are reported."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    (pkg / "long.py").write_text(f"def f():\n{body}\n")
    (pkg / "big.py").write_text("x = 1\n" * (MAX_MODULE_LINES + 1))
    found = oversized(pkg)
    assert any("long.py:1 f()" in f for f in found), found
    assert any(f.startswith("pkg/big.py") for f in found), found


@pytest.mark.parametrize("module", ["flakehunt.cli", "flakehunt.wire", "flakehunt.hunt"])
def test_the_parent_imports_no_pytest(module):
    """The parent runs pytest as processes; importing it costs every command its start-up
    (`flakehunt --version` included), and the contract module must load without it."""
    code = (f"import sys, json, {module}; "
            "print(json.dumps(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('pytest', '_pytest', 'xdist'))))")
    out = run(sys.executable, "-c", code, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []
