import os
import time
from pathlib import Path

import pytest

LOCK = Path(__file__).parent / "migrate.lock"  # in the source tree


@pytest.fixture
def migration_lock():
    fd = os.open(LOCK, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    yield LOCK
    os.close(fd)
    LOCK.unlink()


def test_migrate_up(migration_lock):
    time.sleep(0.15)
    assert migration_lock.exists()


def test_migrate_down(migration_lock):
    time.sleep(0.15)
    assert migration_lock.exists()


def test_plan_is_ordered():
    assert sorted([2, 1]) == [1, 2]
