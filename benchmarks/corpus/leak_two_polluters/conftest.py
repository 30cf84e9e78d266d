import pytest

import metrics


@pytest.fixture
def counters():
    return metrics
