import pytest


@pytest.mark.parametrize("n", range(20))
def test_users_values(n):
    assert sorted([n, 1]) == sorted([1, n])


def test_users_sees_no_plugins(app_store):
    assert app_store.PLUGINS == {}


def test_users_retry_budget(app_store):
    assert app_store.FLAGS["retries"] == 3
