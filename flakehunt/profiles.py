"""Perturbation profiles: how a run is made to feel like a slow, busy or
parallel CI box.

A profile says whether it works on this machine and by which mechanism, what it
adds to the child's command line (child-side knobs, applied by the plugin:
CPU pinning, burner processes, asyncio timer jitter, thread-switch interval),
and what the parent attaches to the running child (CPU quota: a cgroup where
one can be written, else a SIGSTOP/SIGCONT duty cycle). Unavailable profiles
are reported, never silently skipped. Nothing a profile starts or creates
outlives its run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

CGROUP = Path("/sys/fs/cgroup")
QUOTA_PERIOD_US = 20000
JITTER_MS = 10
SWITCH_INTERVAL = 1e-5


@dataclass(frozen=True)
class Availability:
    available: bool
    mechanism: str
    why: str = ""


class Attached(Protocol):
    def stop(self) -> dict:
        """End the perturbation (never leave anything behind); say what it did."""
        ...


class Profile(Protocol):
    name: str
    description: str
    #: True when a run is pinned to one CPU the scheduler picks
    pins: bool
    #: roughly how much longer a run takes under this profile
    slowdown: float
    #: runs in a sweep's rotation for each run of a weight-1 profile
    weight: int
    #: True when ``attach`` waits until the run's tests start: start-up and collection
    #: run at full speed (and are counted as a whole CPU per process until then)
    defers: bool

    def availability(self) -> Availability: ...

    def cpus_used(self, workers: int) -> float:
        """How much CPU a run with ``workers`` xdist workers keeps busy."""
        ...

    def child_args(self, cpu: int | None = None) -> tuple[str, ...]: ...

    def attach(self, pgid: int, workers: int, rundir: Path) -> Attached | None: ...

    def wrapper(self, workers: int) -> tuple[str, ...]:
        """What a reproducer command is wrapped in to apply this profile by hand."""
        ...


def memory_to_spare(meminfo: Path = Path("/proc/meminfo")) -> bool:
    """At least a fifth of the machine's memory is available (Linux's MemAvailable);
    False where that cannot be read."""
    fields: dict[str, int] = {}
    try:
        for line in meminfo.read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("MemTotal", "MemAvailable"):
                fields[name] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        return False
    return len(fields) == 2 and fields["MemAvailable"] * 5 >= fields["MemTotal"]


def allowed_cpus() -> list[int]:
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


class Plain:
    """The machine as it is; the base of every other profile."""

    name = "none"
    description = "the machine as it is"
    pins = False
    slowdown = 1.0
    weight = 1
    defers = False

    def availability(self) -> Availability:
        return Availability(True, "none")

    def cpus_used(self, workers: int) -> float:
        return max(1, workers)

    def child_args(self, cpu: int | None = None) -> tuple[str, ...]:
        return ()

    def attach(self, pgid: int, workers: int, rundir: Path) -> Attached | None:
        return None

    def wrapper(self, workers: int) -> tuple[str, ...]:
        return ()


class SingleCore(Plain):
    name = "single-core"
    description = "the run and its xdist workers pinned to one CPU"
    pins = True

    def availability(self) -> Availability:
        if not hasattr(os, "sched_setaffinity"):
            return Availability(False, "none", "this platform has no CPU affinity")
        return Availability(True, "sched_setaffinity")

    def cpus_used(self, workers: int) -> float:
        return 1  # every process of the run shares the one CPU

    def child_args(self, cpu: int | None = None) -> tuple[str, ...]:
        return (f"--flakehunt-cpus={allowed_cpus()[0] if cpu is None else cpu}",)


class Contended(Plain):
    name = "contended"
    slowdown = 1.5
    description = "CPU-burner processes beside the run, one per CPU, for its whole duration"

    def availability(self) -> Availability:
        return Availability(True, "burner processes")

    def cpus_used(self, workers: int) -> float:
        return len(allowed_cpus())  # the burners take the rest of the machine

    def child_args(self, cpu: int | None = None) -> tuple[str, ...]:
        return (f"--flakehunt-burners={len(allowed_cpus())}",)


class Jitter(Plain):
    name = "jitter"
    description = f"seeded asyncio timer delays of up to {JITTER_MS} ms, replayable"

    def availability(self) -> Availability:
        return Availability(True, "asyncio call_at patch")

    def child_args(self, cpu: int | None = None) -> tuple[str, ...]:
        return (f"--flakehunt-jitter={JITTER_MS}",)


class ThreadSwitch(Plain):
    name = "threads"
    description = f"sys.setswitchinterval({SWITCH_INTERVAL:g}): threads switch far more often"

    def availability(self) -> Availability:
        return Availability(True, "sys.setswitchinterval")

    def child_args(self, cpu: int | None = None) -> tuple[str, ...]:
        return (f"--flakehunt-switch-interval={SWITCH_INTERVAL:g}",)


class Quota(Plain):
    """A share of one CPU per process of the run: a cgroup quota where one can be
    written (v2 cpu.max, v1 cfs_quota_us), else a SIGSTOP/SIGCONT duty cycle."""

    pins = False
    weight = 2  # runs in a sweep's rotation per run of another profile (plan.profile_cycle)
    defers = True  # throttling start-up and collection exposes nothing: only the tests

    def __init__(self, share: float) -> None:
        self.share = share
        self.slowdown = 1 / share
        self.name = f"quota-{round(share * 100)}"
        self.description = f"{share:.0%} of a CPU per process (cgroup quota or duty cycle)"

    def availability(self) -> Availability:
        mech = quota_mechanism()
        if mech is None:
            return Availability(False, "none", "no writable cgroup and no SIGSTOP here")
        return Availability(True, mech)

    def cpus_used(self, workers: int) -> float:
        return self.share * max(1, workers)

    def attach(self, pgid: int, workers: int, rundir: Path) -> Attached | None:
        mech = quota_mechanism()
        if mech and mech.startswith("cgroup"):
            try:
                return CgroupQuota(mech, self.share * max(1, workers), pgid)
            except OSError:
                pass  # the group could not be made or joined: fall back, and say so
        return DutyCycle(pgid, self.share, rundir / "throttle.json",
                         fallback_from=mech if mech and mech.startswith("cgroup") else None)

    def wrapper(self, workers: int) -> tuple[str, ...]:
        return ("python", "-m", "flakehunt.throttle", f"--share={self.share:g}", "--")


def quota_mechanism() -> str | None:
    if cgroup_v2_dir() is not None:
        return "cgroup-v2"
    if cgroup_v1_dir() is not None:
        return "cgroup-v1"
    if hasattr(signal, "SIGSTOP") and hasattr(os, "killpg"):
        return "duty-cycle"
    return None


def own_cgroup_v2() -> Path | None:
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                return CGROUP / line[3:].lstrip("/")
    except OSError:
        return None
    return None


def cgroup_v2_dir() -> Path | None:
    """Our own v2 group, if the cpu controller is delegated below it and writable."""
    base = own_cgroup_v2()
    if base is None:
        return None
    try:
        if "cpu" in (base / "cgroup.subtree_control").read_text().split() \
                and os.access(base, os.W_OK):
            return base
    except OSError:
        return None
    return None


def cgroup_v1_dir() -> Path | None:
    base = CGROUP / "cpu"
    if (base / "cpu.cfs_quota_us").exists() and os.access(base, os.W_OK):
        return base
    return None


def group_pids(pgid: int) -> list[int]:
    """The processes of a process group, leader first (Linux /proc; else the leader)."""
    pids = [pgid]
    try:
        entries = os.listdir("/proc")
    except OSError:
        return pids
    for name in entries:
        if not name.isdigit() or int(name) == pgid:
            continue
        try:
            stat = Path("/proc", name, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) "
        if len(fields) > 2 and fields[2] == str(pgid):
            pids.append(int(name))
    return pids


#: every cgroup this process made and has not removed yet (see remove_made)
MADE: set[Path] = set()


def remove_cgroup(path: Path) -> None:
    for _ in range(50):
        try:
            path.rmdir()
            break
        except FileNotFoundError:
            break
        except OSError:
            # processes still inside (a stray child): move them out, then retry
            try:
                for pid in (path / "cgroup.procs").read_text().split():
                    (path.parent / "cgroup.procs").write_text(pid)
            except OSError:
                pass
            time.sleep(0.02)
    MADE.discard(path)


def remove_made() -> None:
    """Remove what is left of this process's cgroups: the end of a hunt, however it
    ended (an interrupt can land between making a group and handing it over)."""
    for path in list(MADE):
        remove_cgroup(path)


class CgroupQuota:
    """One cgroup per run, removed when the run ends."""

    def __init__(self, mech: str, cpus: float, pgid: int) -> None:
        self.mech = mech
        base = cgroup_v2_dir() if mech == "cgroup-v2" else cgroup_v1_dir()
        if base is None:
            raise OSError("cgroup went away")
        sweep_stale(base)
        self.path = base / f"flakehunt-{os.getpid()}-{pgid}"
        self.path.mkdir()
        MADE.add(self.path)
        try:
            quota = max(1000, int(cpus * QUOTA_PERIOD_US))
            if mech == "cgroup-v2":
                (self.path / "cpu.max").write_text(f"{quota} {QUOTA_PERIOD_US}")
            else:
                (self.path / "cpu.cfs_period_us").write_text(str(QUOTA_PERIOD_US))
                (self.path / "cpu.cfs_quota_us").write_text(str(quota))
            (self.path / "cgroup.procs").write_text(str(pgid))
            for pid in group_pids(pgid)[1:]:  # its xdist workers, already started
                try:
                    (self.path / "cgroup.procs").write_text(str(pid))
                except OSError:
                    pass  # gone since it was listed
        except BaseException:  # an OSError, or an interrupt half-way: no group left
            remove_cgroup(self.path)
            raise
        self.before = self.stat()

    def stat(self) -> dict[str, int]:
        try:
            return {k: int(v) for k, v in (line.split() for line in
                    (self.path / "cpu.stat").read_text().splitlines())}
        except (OSError, ValueError):
            return {}

    def stop(self) -> dict:
        after = self.stat()
        remove_cgroup(self.path)
        throttled = after.get("nr_throttled", 0) - self.before.get("nr_throttled", 0)
        return {"mechanism": self.mech, "throttled_periods": throttled,
                "bit": throttled > 0}


def sweep_stale(base: Path) -> None:
    """Remove groups left by hunts that died (their hunter pid is gone)."""
    for group in base.glob("flakehunt-*-*"):
        try:
            hunter = int(group.name.split("-")[1])
            os.kill(hunter, 0)
        except ProcessLookupError:
            try:
                group.rmdir()
            except OSError:
                pass
        except (ValueError, PermissionError):
            pass


class DutyCycle:
    """A helper process (its own session) that duty-cycles the run's group."""

    def __init__(self, pgid: int, share: float, report: Path,
                 fallback_from: str | None = None) -> None:
        self.report = report
        self.fallback_from = fallback_from
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flakehunt.throttle", f"--pgid={pgid}", f"--share={share}",
             f"--report={report}"], start_new_session=True, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> dict:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        try:
            facts = json.loads(self.report.read_text())
        except (OSError, ValueError):
            facts = {"mechanism": "duty-cycle", "achieved": None}
        facts["bit"] = bool(facts.get("cycles"))
        if self.fallback_from:
            facts["fallback_from"] = self.fallback_from
        return facts


PROFILES: dict[str, Profile] = {p.name: p for p in (
    Plain(), SingleCore(), Contended(), Quota(0.5), Quota(0.25), Quota(0.1), Jitter(),
    ThreadSwitch())}

DEFAULT = ("none", "quota-10", "quota-25", "jitter", "threads")


def get(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}") from None
