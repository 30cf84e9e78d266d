import pytest

import quota


@pytest.fixture
def uploads():
    return quota
