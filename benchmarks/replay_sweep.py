"""Replay a hunt's sweep through flakehunt's scheduler with a fake clock.

    python3 benchmarks/replay_sweep.py HUNT.json [--startup 1.0] [--overlap 0.25] [-v]

Takes the sweep runs of a hunt's JSON report (`flakehunt run ... --json HUNT.json`),
each with its measured duration, and runs them again through `flakehunt.scheduler`
on this machine's limits (`Limits.for_jobs(0)`, two CPUs unless --cpus), with no
process: each run lasts what it lasted in the hunt, and a run whose profile applies
late (a quota) is still starting, unthrottled, for its first --startup seconds. Prints
the simulated sweep wall beside the measured one, and with -v when each run started.

What it is for: trying a scheduling rule on real hunts' runs in a second, before
measuring it for real (the model leaves out the warm parents, the pilot's wait and
the slowdown of runs that share a CPU, so compare rules with each other, not with the
measured wall). The 2,000-test suite of bench_scale replayed within 1-3 s of its
measured sweep.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from flakehunt.model import RunResult, RunSpec, RunStatus  # noqa: E402
from flakehunt.scheduler import Job, Limits, Scheduler  # noqa: E402


class Clock:
    def __init__(self, tick: float) -> None:
        self.now, self.tick = 0.0, tick

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += self.tick


class Replayed:
    """A run that ends after its measured duration; starting for ``startup`` s."""

    def __init__(self, clock: Clock, duration: float, startup: float) -> None:
        self.clock, self.duration, self.startup = clock, duration, startup
        self.started = clock.now
        self.applied: dict[str, Any] = {}

    @property
    def waiting(self) -> bool:
        return self.clock.now - self.started < self.startup

    def poll(self) -> int | None:
        return 0 if self.clock.now - self.started >= self.duration else None

    def kill(self) -> None: ...


class Launcher:
    def __init__(self, clock: Clock, durations: dict[int, float], startup: float) -> None:
        self.clock, self.durations, self.startup = clock, durations, startup
        self.starts: dict[int, float] = {}

    def start(self, job: Job) -> Replayed:
        self.starts[job.spec.index] = self.clock.now
        return Replayed(self.clock, self.durations[job.spec.index], self.startup)

    def command(self, spec: RunSpec) -> str:
        return ""


def replay(report: dict[str, Any], cpus: float = 2, startup: float = 1.0,
           overlap: float = 0.25, tick: float = 0.05) -> tuple[float, dict[int, float]]:
    """(the simulated sweep's wall, each run's start) for the report's sweep runs."""
    runs = sorted((r for r in report["runs"] if r["purpose"] == "sweep"),
                  key=lambda r: r["index"])
    clock = Clock(tick)
    launcher = Launcher(clock, {r["index"]: r["duration"] for r in runs}, startup)
    limits = replace(Limits.for_jobs(0), slots=cpus, max_running=3 * int(cpus),
                     held_places=2 * int(cpus), overlap=overlap)

    def read(spec: RunSpec, rundir: Path, code: int | None, status: RunStatus,
             duration: float) -> RunResult:
        return RunResult(spec, status, code, duration, (), str(rundir))

    scheduler = Scheduler(launcher, read, Path("/nonexistent"), ("t::a",), limits, None,
                          clock=clock, sleep=clock.sleep, cpus=lambda: list(range(int(cpus))),
                          memory_to_spare=lambda: True)
    scheduler.sweep([RunSpec(index=r["index"], workers=r["workers"], profile=r["profile"],
                             random_seed=r["random_seed"]) for r in runs])
    return clock.now, launcher.starts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path)
    ap.add_argument("--cpus", type=float, default=2)
    ap.add_argument("--startup", type=float, default=1.0,
                    help="seconds a throttled run starts unthrottled (default 1.0)")
    ap.add_argument("--overlap", type=float, default=Limits.for_jobs(0).overlap)
    ap.add_argument("-v", action="store_true", help="when each run started")
    args = ap.parse_args()
    try:
        report = json.loads(args.report.read_text())
    except (OSError, ValueError) as exc:
        print(f"replay_sweep: cannot read {args.report}: {exc}", file=sys.stderr)
        return 2
    wall, starts = replay(report, args.cpus, args.startup, args.overlap)
    measured = (report.get("timing") or {}).get("sweep")
    print(f"simulated sweep wall {wall:.1f} s"
          + (f" (measured sweep {measured:.1f} s)" if measured else ""))
    if args.v:
        runs = {r["index"]: r for r in report["runs"]}
        for index, at in sorted(starts.items(), key=lambda kv: kv[1]):
            r = runs[index]
            print(f"{index:4} {at:7.2f} {at + r['duration']:7.2f}  workers {r['workers']} "
                  f"{r['profile']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
