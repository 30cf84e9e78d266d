import pytest

import store


@pytest.fixture
def app_store():
    return store
