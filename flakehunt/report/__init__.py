"""Output formats, one module each, all behind :class:`Reporter`."""

from __future__ import annotations

from typing import Protocol

from flakehunt.model import HuntResult


class Reporter(Protocol):
    def render(self, result: HuntResult) -> str: ...


def nodeid_parts(nodeid: str) -> list[str]:
    """``path::Class::test[params]`` -> ``[path, Class, test[params]]``; a ``::`` inside the
    parameters (they are the test's own text) does not split."""
    head, bracket, params = nodeid.partition("[")
    parts = head.split("::")
    parts[-1] += bracket + params
    return parts
