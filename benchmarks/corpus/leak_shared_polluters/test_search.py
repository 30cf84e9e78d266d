import pytest


@pytest.mark.parametrize("n", range(20))
def test_search_values(n):
    assert sorted([n, 1]) == sorted([1, n])


def test_search_sees_no_plugins(app_store):
    assert app_store.PLUGINS == {}


def test_search_runs_in_safe_mode(app_store):
    assert app_store.FLAGS["mode"] == "safe"
