"""Failure signatures: asyncio loop lifecycle and pytest-asyncio misconfiguration.

Matched against the whole failure (every exception of the chain and the full
report text, not the 500-character XML message).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flakehunt.model import Failure


@dataclass(frozen=True)
class Signature:
    key: str
    pattern: re.Pattern[str]
    meaning: str


def sig(key: str, pattern: str, meaning: str) -> Signature:
    return Signature(key, re.compile(pattern), meaning)


LIFECYCLE = (
    sig("loop-closed", r"Event loop is closed",
        "something scheduled work on an event loop that had already been closed"),
    sig("different-loop", r"attached to a different loop",
        "a future/connection made on one loop was awaited from another"),
    sig("bound-different-loop", r"is bound to a different event loop",
        "an asyncio primitive (Lock, Event, Queue...) bound to one loop was used from another"),
    sig("no-current-loop", r"There is no current event loop",
        "sync code asked for the current loop after a runner closed it and unset it"),
    sig("loop-stopped", r"Event loop stopped before Future completed",
        "a loop was stopped by code that did not create it"),
    sig("loop-running", r"This event loop is already running|cannot be called from a running "
        r"event loop|Cannot run the event loop while another loop is running",
        "a loop was driven from inside a running loop"),
    sig("task-destroyed", r"Task was destroyed but it is pending",
        "a loop closed with tasks still pending"),
)

MISCONFIG = (
    sig("scope-mismatch", r"ScopeMismatch.*_(function|class|module|package|session)_scoped_runner",
        "an async fixture's loop_scope is narrower than its scope"),
    sig("not-supported", r"async def functions are not natively supported",
        "async tests run without pytest-asyncio/anyio handling them"),
    sig("strict-mode", r"requested async @pytest\.fixture .* in strict mode",
        "an async fixture declared with @pytest.fixture under asyncio strict mode"),
)


def failure_text(f: Failure) -> str:
    parts = [f.message, f.text]
    parts += [f"{c.get('type')}: {c.get('message')}" for c in f.chain]
    return "\n".join(p for p in parts if p)


def match(table: tuple[Signature, ...], f: Failure | None) -> Signature | None:
    if f is None:
        return None
    text = failure_text(f)
    for s in table:
        if s.pattern.search(text):
            return s
    return None
