from unittest import mock

import pytest

import clock


@pytest.fixture
def stamper():
    return clock.Stamper()


def test_frozen_stamp(stamper):
    mock.patch("clock.now", return_value=0).start()
    assert stamper.stamp("x") == "0:x"


def test_stamp_is_recent(stamper):
    assert int(stamper.stamp("y").split(":")[0]) > 1_600_000_000


def test_stamp_keeps_text(stamper):
    assert stamper.stamp("z").endswith(":z")
