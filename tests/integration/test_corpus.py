"""The corpus (benchmarks/corpus/) is usable: every suite collects, and its truth names
only tests it collects. Nothing here hunts: `python benchmarks/score_corpus.py` does."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import score_corpus as sc  # noqa: E402

SUITES = sc.suites()


def collect(suite: Path) -> tuple[int, list[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                           "-p", "no:cacheprovider", "-p", "no:randomly"],
                          cwd=suite, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    return proc.returncode, [ln for ln in proc.stdout.splitlines() if "::" in ln], proc.stdout


@pytest.fixture(scope="module")
def collected() -> dict[str, tuple[int, list[str], str]]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip([s.name for s in SUITES], pool.map(collect, SUITES), strict=True))


def test_the_corpus_covers_every_family():
    assert len(SUITES) >= 30
    truths = [sc.load_truth(s) for s in SUITES]
    counts = {c: sum(e.category == c for t in truths for e in t.flaky.values())
              for c in sc.CATEGORIES}
    assert min(counts.values()) >= 5, counts
    assert any(not t.flaky for t in truths)  # controls with nothing flaky
    assert any(t.failing for t in truths)


@pytest.mark.parametrize("suite", SUITES, ids=[s.name for s in SUITES])
def test_a_suite_collects_and_its_truth_names_collected_tests(suite, collected):
    code, ids, out = collected[suite.name]
    assert code == 0 and ids, out[-2000:]
    assert (suite / "pytest.ini").exists()
    unknown = sc.load_truth(suite).named() - set(ids)
    assert not unknown, f"truth names tests the suite does not collect: {sorted(unknown)}"


def test_the_project_does_not_collect_the_corpus():
    """norecursedirs keeps the corpus's deliberately flaky tests out of this suite."""
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                           "-p", "no:cacheprovider", "benchmarks"], cwd=root,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 5, proc.stdout[-2000:]  # 5: no tests collected
    assert "corpus" not in proc.stdout
