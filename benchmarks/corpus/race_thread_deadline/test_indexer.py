import time

import pytest

from indexer import Indexer


@pytest.fixture
def indexer():
    ix = Indexer(work_ms=30)
    ix.start()
    yield ix
    ix.thread.join(5)


def test_index_ready_after_deadline(indexer):
    time.sleep(0.100)
    assert indexer.done.is_set()


def test_index_eventually_ready(indexer):
    assert indexer.done.wait(5)
