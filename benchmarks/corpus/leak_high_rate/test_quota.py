import pytest


@pytest.mark.parametrize("size", [10, 20, 30, 40, 50, 60])
def test_small_upload(uploads, size):
    uploads.upload(size)
    assert uploads.USED["bytes"] >= size


def test_full_quota_available(uploads):
    assert uploads.upload(100)
