import pytest

import store


@pytest.fixture
def svc():
    return store.service
