import sys
import time
import unittest

import pytest


def test_slow_sleep():
    time.sleep(0.4)
    assert True


def test_slow_cpu():
    assert sum(i * i for i in range(300_000)) > 0


@pytest.mark.skip(reason="documented as skipped")
def test_always_skipped():
    raise AssertionError("never runs")


@pytest.mark.skipif(sys.platform != "nonexistent", reason="skipped on every real platform")
def test_skipif():
    raise AssertionError("never runs")


@pytest.mark.xfail(reason="known bug", strict=True)
def test_known_bug():
    assert 1 == 2


@pytest.mark.parametrize("n, sq", [(1, 1), (2, 4), (3, 9), (-4, 16)], ids=["one", "two", "three", "minus four"])
def test_square(n, sq):
    assert n * n == sq


class TestUnit(unittest.TestCase):
    def test_skipped_inside(self):
        self.skipTest("not here")

    def test_ok(self):
        self.assertIn("a", "abc")
