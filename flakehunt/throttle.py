"""A CPU duty cycle for a process group: SIGCONT for ``share`` of every period,
SIGSTOP for the rest. Used where no cgroup quota can be written.

Two ways to use it:
- ``python -m flakehunt.throttle --pgid PGID --share 0.25`` throttles an
  existing group (flakehunt starts one helper per throttled run);
- ``python -m flakehunt.throttle --share 0.25 -- CMD...`` runs CMD in its own
  process group under the duty cycle and exits with its code (reproducers).

It never leaves a group stopped: on SIGTERM/SIGINT, when the group is gone, or
when its parent dies (it checks every period) it sends SIGCONT and exits.
Closed loop: the stop phase is stretched to match the run phase actually
observed, so a loaded machine does not drift the achieved duty upwards.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time


class Stop(Exception):
    pass


def _stop(signum, frame) -> None:
    raise Stop()


def cycle(pgid: int, share: float, period: float, parent: int,
          child: subprocess.Popen | None = None) -> dict:
    """Throttle until the group is gone, we are told to stop, or the parent dies."""
    on_total = off_total = 0.0
    cycles = 0
    started = time.monotonic()
    try:
        while True:
            if os.getppid() != parent or (child is not None and child.poll() is not None):
                break
            t0 = time.monotonic()
            os.killpg(pgid, signal.SIGCONT)
            time.sleep(share * period)
            t1 = time.monotonic()
            os.killpg(pgid, signal.SIGSTOP)
            on = t1 - t0
            # closed loop: stop for as long as the share asks, given the run phase we got
            time.sleep(max(0.0, on * (1 - share) / share))
            t2 = time.monotonic()
            on_total += on
            off_total += t2 - t1
            cycles += 1
    except (ProcessLookupError, PermissionError, Stop, KeyboardInterrupt):
        pass
    finally:
        try:
            os.killpg(pgid, signal.SIGCONT)
        except (ProcessLookupError, PermissionError):
            pass
    total = on_total + off_total
    return {"mechanism": "duty-cycle", "requested": share, "period_s": period,
            "achieved": round(on_total / total, 3) if total else None, "cycles": cycles,
            "seconds": round(time.monotonic() - started, 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flakehunt.throttle")
    ap.add_argument("--pgid", type=int)
    ap.add_argument("--share", type=float, required=True)
    ap.add_argument("--period", type=float, default=0.02)
    ap.add_argument("--report")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    if not 0 < args.share < 1:
        ap.error("--share must be between 0 and 1")
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    child = None
    if cmd:
        child = subprocess.Popen(cmd, start_new_session=True)
        pgid = child.pid
    elif args.pgid:
        pgid = args.pgid
    else:
        ap.error("give --pgid or a command after --")
    facts = cycle(pgid, args.share, args.period, os.getppid(), child)
    if args.report:
        with open(args.report, "w", encoding="utf-8") as fh:
            json.dump(facts, fh)
    if child is not None:
        try:
            return child.wait()
        except Stop:
            os.killpg(child.pid, signal.SIGTERM)
            return child.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
