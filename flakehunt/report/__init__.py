"""Output formats, one module each, all behind :class:`Reporter`."""

from __future__ import annotations

from typing import Protocol

from flakehunt.model import HuntResult


class Reporter(Protocol):
    def render(self, result: HuntResult) -> str: ...
