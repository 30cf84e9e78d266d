import pytest

from pool import POOL


@pytest.fixture
def pool():
    return POOL
