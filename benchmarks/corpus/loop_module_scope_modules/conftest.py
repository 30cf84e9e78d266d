import pytest

from limiter import LIMITER


@pytest.fixture
def limiter():
    return LIMITER
