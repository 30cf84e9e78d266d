"""Child side: which worker this pytest process is, and a test's id without
pytest-repeat's part.

Shared by the plugin's :class:`~flakehunt.plugin.Perturber` (seeds per test) and the
:class:`~flakehunt.recorder.Recorder` (records per test). Cheap to import.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from flakehunt.wire import MAIN_WORKER

if TYPE_CHECKING:
    import pytest

#: the parameter pytest-repeat adds to every repeated test (0-based)
REPEAT_STEP = "__pytest_repeat_step_number"


def worker_id() -> str:
    """This process's xdist worker (``gw0``...), or ``main`` without xdist."""
    return os.environ.get("PYTEST_XDIST_WORKER", MAIN_WORKER)


def base_nodeid(item: pytest.Item) -> str:
    """The test id without pytest-repeat's ``[i-n]`` part."""
    nodeid = item.nodeid
    params = getattr(getattr(item, "callspec", None), "params", {})
    if REPEAT_STEP not in params:
        return nodeid
    count = item.config.getoption("count", None)
    part = f"{params[REPEAT_STEP] + 1}-{count}"
    for old, new in ((f"[{part}]", ""), (f"[{part}-", "["), (f"-{part}]", "]"), (f"-{part}-", "-")):
        if old in nodeid:
            head, _, tail = nodeid.rpartition(old)
            return head + new + tail
    return nodeid
