"""Whether flakehunt's runs may share the machine, and how they are kept apart.

flakehunt runs several child pytest processes at once; each has its own
``--basetemp`` and TMPDIR, but they share the network and the project's tree. A suite
that binds a fixed port, writes a file in its tree, or uses a service on this machine
would fail only because flakehunt runs it beside itself: a false flaky.

So the first run of a hunt runs alone, and what it did is read from the run's
``shared.jsonl`` (written by the child, :mod:`flakehunt.watch`). Then, for the rest of
the hunt (and as later runs show more):

- it used nothing the runs share: runs go side by side (``shared``);
- it bound fixed ports and needed nothing off its own loopback: each run gets a network
  namespace of its own (``netns``, :mod:`flakehunt.netns`), where Linux allows it;
- otherwise (it wrote in its tree, connected to a local service, or bound fixed ports
  where there are no namespaces or while needing the network): one run at a time
  (``serial``).

The policy only gets stricter. Each run records how it ran (``profile_applied``), and
the hunt's settings and warnings say which happened and why.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flakehunt.wire import SHARED

NETNS = Path(__file__).with_name("netns.py")
#: examples quoted per kind in a warning
SHOWN = 3


def read_shared(rundir: Path) -> list[dict[str, str]]:
    """The records a run's processes wrote (none when the file is missing or torn)."""
    try:
        lines = (rundir / SHARED).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and {"kind", "what"} <= rec.keys():
            out.append({k: str(v) for k, v in rec.items()})
    return out


def netns_argv() -> list[str]:
    """What a child's command line is prefixed with to get its own network namespace."""
    return [sys.executable, "-I", "-S", str(NETNS), "--"]


def netns_unavailable() -> str | None:
    """None when a run can get its own network namespace here, else why not."""
    if not sys.platform.startswith("linux"):
        return f"no network namespaces on {sys.platform}"
    try:
        proc = subprocess.run([sys.executable, "-I", "-S", str(NETNS), "--check"],
                              capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if proc.returncode == 0:
        return None
    return (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]


class Isolation:
    """The policy of one hunt; see the module's docstring. ``mode``: ``pilot`` (the first
    run, alone), ``shared``, ``netns`` or ``serial``."""

    def __init__(self, probe: Callable[[], str | None] | None = None) -> None:
        """``probe``: why there are no network namespaces here (default
        :func:`netns_unavailable`), asked once, when first needed."""
        self.mode = "pilot"
        self.why = ""
        self.seen: dict[str, dict[str, str]] = {}  # kind -> what -> the test that did it
        self.probe = probe
        self.no_netns: str | None = None  # why there are no namespaces, once asked

    @property
    def one_at_a_time(self) -> bool:
        return self.mode in ("pilot", "serial")

    def label(self) -> str:
        """How a run starting now runs: ``alone`` (no other run beside it), ``netns`` (in a
        network namespace of its own) or ``shared`` (beside others, on one network)."""
        return {"pilot": "alone", "serial": "alone"}.get(self.mode, self.mode)

    def update(self, records: list[dict[str, str]]) -> None:
        """A run ended, having done ``records``: decide again."""
        for rec in records:
            self.seen.setdefault(rec["kind"], {}).setdefault(rec["what"], rec.get("test", ""))
        if self.mode == "serial":
            return
        if "tree" in self.seen:
            self.serialise(f"the suite writes in its tree ({self.quote('tree')})")
        elif "local" in self.seen:
            self.serialise(f"the suite connects to {self.quote('local')} outside its own "
                           "process (a service on this machine, or a server it starts)")
        elif "port" in self.seen:
            self.isolate_network()
        elif self.mode == "pilot":
            self.mode = "shared"

    def isolate_network(self) -> None:
        ports = f"the suite binds fixed ports ({self.quote('port')})"
        if self.mode == "netns" and "remote" not in self.seen:
            return
        if "remote" in self.seen:
            self.serialise(f"{ports} and uses the network ({self.quote('remote')})")
            return
        if self.no_netns is None:
            self.no_netns = (self.probe or netns_unavailable)() or ""
        if self.no_netns:
            self.serialise(f"{ports}; runs would share the network: no network "
                           f"namespaces here ({self.no_netns})")
        else:
            self.mode, self.why = "netns", f"{ports}: each run got its own network namespace"

    def serialise(self, why: str) -> None:
        self.mode, self.why = "serial", f"runs went one at a time: {why}"

    def quote(self, kind: str) -> str:
        items = self.seen.get(kind, {})
        shown = [f"{what} by {test}" if test else what
                 for what, test in list(items.items())[:SHOWN]]
        more = len(items) - len(shown)
        return ", ".join(shown) + (f" and {more} more" if more > 0 else "")

    def summary(self) -> dict[str, Any]:
        """For the report's settings."""
        return {"mode": "shared" if self.mode == "pilot" else self.mode,
                **({"why": self.why} if self.why else {}),
                "seen": {kind: sorted(items) for kind, items in self.seen.items()}}

    def warnings(self) -> list[str]:
        """A hunt slowed down, or whose early runs shared what they should not, says so."""
        return [self.why] if self.mode == "serial" else []
