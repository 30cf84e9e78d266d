import pytest

import tenancy


@pytest.fixture
def tenant():
    return tenancy.CURRENT


def test_switch_to_acme(tenant):
    tenancy.switch("acme")
    assert tenant["tenant"] == "acme"


def test_reset_after_logout(tenant):
    tenancy.reset()
    assert tenant["tenant"] is None


def test_no_tenant_by_default(tenant):
    assert tenant["tenant"] is None


def test_unrelated():
    assert tenancy.switch is not None
