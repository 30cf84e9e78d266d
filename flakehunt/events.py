"""Read what the child plugin streamed into a run's folder (events-*.jsonl).

The side files are written one flushed line per event, so they survive a run
that crashed or was killed: the last line may be cut, everything before it is
whole. Each line is read once, here, into the typed records of
:mod:`flakehunt.wire`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from flakehunt.wire import (
    EVENTS_PREFIX,
    EVENTS_SUFFIX,
    EndRecord,
    SessionRecord,
    StartRecord,
    end_record,
)


@dataclass
class RunEvents:
    #: (worker, position) -> the plugin's "end" record of that test execution
    ended: dict[tuple[str, int], EndRecord] = field(default_factory=dict)
    #: worker -> the "start" record of a test that never ended (crash or kill)
    unfinished: dict[str, StartRecord] = field(default_factory=dict)
    #: worker -> that process's "session" record (versions, seeds, cpus)
    sessions: dict[str, SessionRecord] = field(default_factory=dict)
    #: workers whose pytest process reached its end normally
    finished: set[str] = field(default_factory=set)


def read_events(rundir: Path) -> RunEvents:
    out = RunEvents()
    for path in sorted(rundir.glob(f"{EVENTS_PREFIX}*{EVENTS_SUFFIX}")):
        started: StartRecord | None = None
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a line cut by a crash
            kind = rec.get("e")
            if kind == "start":
                started = cast(StartRecord, rec)
            elif kind == "end" and (ended := end_record(rec)) is not None:
                out.ended[(ended["w"], ended["pos"])] = ended
                started = None
            elif kind == "session":
                out.sessions[rec["worker"]] = cast(SessionRecord, rec)
            elif kind == "finish":
                out.finished.add(path.stem.removeprefix(EVENTS_PREFIX))
        if started is not None:
            out.unfinished[started["w"]] = started
    return out
