import pytest


@pytest.mark.parametrize("n", range(20))
def test_billing_values(n):
    assert sorted([n, 1]) == sorted([1, n])


def test_billing_sees_no_plugins(app_store):
    assert app_store.PLUGINS == {}
