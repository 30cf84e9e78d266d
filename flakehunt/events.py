"""Read what the child plugin streamed into a run's folder (events-*.jsonl).

The side files are written one flushed line per event, so they survive a run
that crashed or was killed: the last line may be cut, everything before it is
whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class RunEvents:
    #: (worker, position) -> the plugin's "end" record of that test execution
    ended: dict[tuple[str, int], dict] = field(default_factory=dict)
    #: worker -> the "start" record of a test that never ended (crash or kill)
    unfinished: dict[str, dict] = field(default_factory=dict)
    #: worker -> that process's "session" record (versions, seeds, cpus)
    sessions: dict[str, dict] = field(default_factory=dict)
    #: workers whose pytest process reached its end normally
    finished: set[str] = field(default_factory=set)


def read_events(rundir: Path) -> RunEvents:
    out = RunEvents()
    for path in sorted(rundir.glob("events-*.jsonl")):
        started: dict | None = None
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a line cut by a crash
            kind = rec.get("e")
            if kind == "start":
                started = rec
            elif kind == "end":
                out.ended[(rec["w"], rec["pos"])] = rec
                started = None
            elif kind == "session":
                out.sessions[rec["worker"]] = rec
            elif kind == "finish":
                out.finished.add(path.stem.removeprefix("events-"))
        if started is not None:
            out.unfinished[started["w"]] = started
    return out
