import pytest


@pytest.mark.parametrize("n", range(20))
def test_reports_values(n):
    assert sorted([n, 1]) == sorted([1, n])


def test_reports_sees_no_plugins(app_store):
    assert app_store.PLUGINS == {}


def test_reports_runs_in_safe_mode(app_store):
    assert app_store.FLAGS["mode"] == "safe"
