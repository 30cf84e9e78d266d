import pytest


@pytest.fixture(scope="module")
def registry():
    """Shared objects for the module's tests, by name."""
    return {}
