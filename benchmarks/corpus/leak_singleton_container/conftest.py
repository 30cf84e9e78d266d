import pytest

from container import Container


@pytest.fixture
def container():
    return Container.get()
