"""Fixtures shared by flakehunt's own tests; plain helpers live in helpers.py."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from helpers import DATA


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture
def keep_random_state():
    """In-process pytester runs with ``--flakehunt-random-seed`` re-seed the global random."""
    state = random.getstate()
    yield
    random.setstate(state)
