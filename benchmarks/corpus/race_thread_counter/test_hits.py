import pytest

from stats import Hits


@pytest.fixture
def hits():
    return Hits()


def test_every_hit_counted(hits):
    hits.hammer()
    assert hits.n == 200000


def test_single_thread_counts(hits):
    for _ in range(100):
        hits.hit()
    assert hits.n == 100
