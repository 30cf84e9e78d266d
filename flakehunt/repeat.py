"""Child side: every test run N times in a row in its process (``--flakehunt-count=N``).

Every kind of test repeats the same way and keeps its own id: plain and parametrized
functions, ``unittest.TestCase`` and ``IsolatedAsyncioTestCase`` methods (which
pytest-repeat's ``--count`` renames or leaves alone). Each execution is the test's
whole protocol again - set-up, call, teardown, function-scoped fixtures made anew (a
new TestCase instance) - as pytest-rerunfailures re-runs an item; the set-up of wider
scopes (``setUpClass``, class-, module- and session-scoped fixtures) stays up between
the executions and is torn down after the last, as it would be after the test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import pytest

if TYPE_CHECKING:
    from _pytest.nodes import Item


class Repeater:
    """Runs each test's protocol ``count`` times; registered by the plugin."""

    def __init__(self, count: int) -> None:
        self.count = count

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: Item, nextitem: Item | None) -> bool:
        from _pytest.runner import runtestprotocol

        # between two executions, tear down the test's own node only: its parents
        # (class, module, session) are what the next execution needs
        keep = cast("Item", item.parent)
        for done in range(1, self.count + 1):
            item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
            runtestprotocol(item, nextitem=nextitem if done == self.count else keep)
            item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
            if item.session.shouldfail or item.session.shouldstop:
                break  # -x / --maxfail: runtestprotocol tore everything down
        return True
