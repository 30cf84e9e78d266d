"""Replay an xdist split exactly: which worker ran which tests, in which order.

A seed fixes the order, not the split: xdist hands tests to workers as they
free up. A recorded split (``{"gw0": [ids...], "gw1": [...]}``) given back as
``--flakehunt-split=JSON`` makes the controller send each worker exactly its
list, in order. Loaded only on an xdist controller, only when asked for.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from xdist.scheduler.each import EachScheduling

from flakehunt.wire import OPT_SPLIT

if TYPE_CHECKING:
    import pytest
    from xdist.remote import Producer


def parse_split(text: str) -> dict[str, list[str]]:
    data = json.loads(text)
    if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, list) for k, v in data.items()):
        raise ValueError(f"{OPT_SPLIT} takes a JSON object {{worker: [test ids]}}")
    return data


class ReplayScheduling(EachScheduling):
    """Every worker collects the same tests; each is sent only its recorded list."""

    def __init__(self, config: pytest.Config, log: Producer | None,
                 split: dict[str, list[str]]) -> None:
        super().__init__(config, log)
        self.split = split

    def schedule(self) -> None:
        assert self.collection_is_completed
        for node, pending in self.node2pending.items():
            if pending:
                continue
            collection = self.node2collection[node]
            where = {nodeid: i for i, nodeid in enumerate(collection)}
            wanted = [where[t] for t in self.split.get(node.gateway.id, []) if t in where]
            pending[:] = wanted
            if wanted:
                node.send_runtest_some(wanted)
            node.shutdown()

    @property
    def tests_finished(self) -> bool:
        if not self.collection_is_completed:
            return False
        return all(len(p) < 2 for p in self.node2pending.values())


class SplitHooks:
    """Registered on an xdist controller when --flakehunt-split is given."""

    def __init__(self, split: dict[str, list[str]]) -> None:
        self.split = split

    def pytest_xdist_make_scheduler(self, config: pytest.Config,
                                    log: Producer) -> ReplayScheduling:
        return ReplayScheduling(config, log, self.split)
