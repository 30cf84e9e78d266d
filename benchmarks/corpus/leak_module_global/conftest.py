import pytest

import plugins


@pytest.fixture
def registry():
    return plugins
