"""runner: the scheduler with fake processes and a fake clock; command lines and env."""

from __future__ import annotations

import shlex
import sys
from collections import deque
from pathlib import Path

import pytest

from flakehunt.command import (
    DROPPED_ENV,
    Suite,
    child_argv,
    child_env,
    replay_args,
    replay_command,
)
from flakehunt.model import RunSpec
from flakehunt.runner import execute


# -- fakes ---------------------------------------------------------------------
class Clock:
    """Time moves only when the scheduler sleeps: one tick per pass."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps = 0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += 1.0


class Job:
    def __init__(self, name: str, slots: int = 1, duration: float | None = 2, rc: int = 0):
        self.name, self.slots, self.duration, self.rc = name, slots, duration, rc
        self.need: float | None = None  # CPUs free to start (None: its slots)

    @property
    def needs(self) -> float:
        return self.slots if self.need is None else self.need

    def __repr__(self) -> str:
        return f"Job({self.name})"


class Handle:
    def __init__(self, job: Job, clock: Clock) -> None:
        self.job, self.clock, self.started = job, clock, clock.now
        self.killed = 0

    def poll(self) -> int | None:
        if self.killed:
            return -9
        if self.job.duration is not None and self.clock.now - self.started >= self.job.duration:
            return self.job.rc
        return None

    def kill(self) -> None:
        self.killed += 1


class Launcher:
    """Records, at each start, which jobs the scheduler still counts as running."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.handles: dict[str, Handle] = {}
        self.live: set[str] = set()
        self.starts: list[tuple[str, frozenset[str]]] = []  # (job, live jobs at its start)

    def start(self, job: Job) -> Handle:
        self.starts.append((job.name, frozenset(self.live)))
        self.live.add(job.name)
        handle = self.handles[job.name] = Handle(job, self.clock)
        return handle


def run(jobs, slots, timeout=None, should_stop=lambda: False, extra=None):
    clock = Clock()
    launcher = Launcher(clock)
    done = []
    jobs_by_name = {j.name: j for j in jobs}

    def on_done(d):
        launcher.live.discard(d.job.name)
        done.append(d)
        if extra:
            for job in extra(d):
                jobs_by_name[job.name] = job
                queue.append(job)

    queue = deque(jobs)
    finished = execute(queue, slots, launcher, on_done, timeout=timeout, clock=clock,
                       sleep=clock.sleep, should_stop=should_stop)
    return finished, done, launcher, queue, jobs_by_name


def slots_in_use(names, jobs_by_name) -> int:
    return sum(jobs_by_name[n].slots for n in names)


# -- scheduling ------------------------------------------------------------------
def test_one_slot_jobs_run_in_pairs():
    jobs = [Job(f"j{i}") for i in range(6)]
    finished, done, launcher, queue, by_name = run(jobs, slots=2)
    assert finished is True
    assert sorted(d.job.name for d in done) == sorted(j.name for j in jobs)
    assert all(d.status == "ok" and d.exit_code == 0 for d in done)
    for name, live in launcher.starts:
        assert slots_in_use(live, by_name) + 1 <= 2, (name, live)
    # and pairs really run together: half the starts find one job already running
    assert sum(1 for _, live in launcher.starts if len(live) == 1) == 3


def test_two_slot_job_runs_alone():
    jobs = [Job("a"), Job("big", slots=2), Job("b"), Job("c")]
    finished, done, launcher, queue, by_name = run(jobs, slots=2)
    assert finished
    starts = dict(launcher.starts)
    assert starts["big"] == frozenset()  # nothing else was running when it started
    for name, live in launcher.starts:
        assert "big" not in live, f"{name} started next to the 2-slot job"
    assert len(done) == 4


def test_job_larger_than_slots_still_runs_alone():
    jobs = [Job("a"), Job("huge", slots=4), Job("b")]
    finished, done, launcher, queue, by_name = run(jobs, slots=2)
    assert finished
    assert {d.job.name for d in done} == {"a", "huge", "b"}
    starts = dict(launcher.starts)
    assert starts["huge"] == frozenset()
    assert all("huge" not in live for _, live in launcher.starts)


def test_single_slot_runs_everything_in_sequence():
    jobs = [Job(f"j{i}", slots=s) for i, s in enumerate([1, 2, 1, 3])]
    finished, done, launcher, queue, by_name = run(jobs, slots=1)
    assert finished
    assert [d.job.name for d in done] == ["j0", "j1", "j2", "j3"]
    assert all(live == frozenset() for _, live in launcher.starts)


def test_exit_codes_and_durations_are_reported():
    jobs = [Job("ok", duration=3, rc=0), Job("bad", duration=5, rc=1)]
    _, done, *_ = run(jobs, slots=2)
    by = {d.job.name: d for d in done}
    assert (by["ok"].exit_code, by["ok"].status, by["ok"].duration) == (0, "ok", 3.0)
    assert (by["bad"].exit_code, by["bad"].status, by["bad"].duration) == (1, "ok", 5.0)


def test_timeout_kills_the_handle_and_reports_timeout():
    jobs = [Job("hang", duration=None), Job("quick", duration=1)]
    finished, done, launcher, *_ = run(jobs, slots=2, timeout=5)
    assert finished
    by = {d.job.name: d for d in done}
    assert by["hang"].status == "timeout"
    assert by["hang"].duration > 5
    assert by["hang"].exit_code == -9  # polled after the kill
    assert launcher.handles["hang"].killed >= 1
    assert by["quick"].status == "ok"
    assert launcher.handles["quick"].killed == 0


def test_no_timeout_means_a_long_job_is_waited_for():
    finished, done, launcher, *_ = run([Job("slow", duration=50)], slots=1, timeout=None)
    assert finished and done[0].status == "ok" and done[0].duration == 50
    assert launcher.handles["slow"].killed == 0


def test_on_done_can_append_jobs_and_they_run():
    def more(d):
        if d.job.name == "first":
            return [Job("second"), Job("third", slots=2)]
        if d.job.name == "third":
            return [Job("fourth")]
        return []

    finished, done, launcher, queue, by_name = run([Job("first")], slots=2, extra=more)
    assert finished
    assert [d.job.name for d in done][-1] == "fourth"
    assert {d.job.name for d in done} == {"first", "second", "third", "fourth"}
    assert not queue


def test_should_stop_kills_running_and_returns_false():
    clock_box = {}

    def stop():
        return clock_box["clock"].now >= 3

    clock = Clock()
    clock_box["clock"] = clock
    launcher = Launcher(clock)
    done = []
    queue = deque([Job("a", duration=None), Job("b", duration=None), Job("c"), Job("d")])
    finished = execute(queue, 2, launcher, done.append, clock=clock, sleep=clock.sleep,
                       should_stop=stop)
    assert finished is False
    assert {d.job.name for d in done} == {"a", "b"}
    assert {d.status for d in done} == {"interrupted"}
    assert all(d.exit_code is None for d in done)
    assert launcher.handles["a"].killed == 1 and launcher.handles["b"].killed == 1
    assert [j.name for j in queue] == ["c", "d"]  # never started
    assert set(launcher.handles) == {"a", "b"}


def test_exception_in_on_done_still_kills_running_handles():
    clock = Clock()
    launcher = Launcher(clock)

    def on_done(d):
        raise RuntimeError("report failed")

    queue = deque([Job("short", duration=1), Job("long", duration=None)])
    with pytest.raises(RuntimeError, match="report failed"):
        execute(queue, 2, launcher, on_done, clock=clock, sleep=clock.sleep)
    assert launcher.handles["long"].killed >= 1


def test_keyboard_interrupt_while_waiting_kills_running_handles():
    clock = Clock()
    launcher = Launcher(clock)

    def sleep(seconds):
        if clock.now >= 2:
            raise KeyboardInterrupt
        clock.sleep(seconds)

    queue = deque([Job("a", duration=None), Job("b", duration=None)])
    with pytest.raises(KeyboardInterrupt):
        execute(queue, 2, launcher, lambda d: None, clock=clock, sleep=sleep)
    assert launcher.handles["a"].killed >= 1
    assert launcher.handles["b"].killed >= 1


def test_narrow_jobs_backfill_while_a_wide_one_waits():
    # "a" holds one of two slots; "wide" needs both: "b" behind it starts meanwhile
    jobs = [Job("a", duration=3), Job("wide", slots=2, duration=1), Job("b", duration=1)]
    _, done, launcher, _, by_name = run(jobs, slots=2)
    order = [name for name, _ in launcher.starts]
    assert order.index("b") < order.index("wide")
    for name, live in launcher.starts:  # never more than two slots in use
        assert slots_in_use(live | {name}, by_name) <= 2 or not live
    assert {d.job.name for d in done} == {"a", "wide", "b"}


def test_fractional_jobs_share_the_slot_a_full_job_leaves():
    q1, q2 = Job("q1", duration=4), Job("q2", duration=4)
    q1.slots = q2.slots = 0.25  # e.g. throttled to a quarter of a CPU
    _, _, launcher, _, _ = run([Job("a", duration=4), q1, q2], slots=2)
    assert dict(launcher.starts)["q2"] == {"a", "q1"}  # all three at once: 1.5 slots


def test_a_job_starts_when_what_it_needs_is_free_and_then_counts_its_slots():
    wide = Job("wide", slots=2, duration=4)
    wide.need = 1  # may start with one CPU free
    _, _, launcher, _, _ = run([Job("a", duration=4), wide, Job("b"), Job("c")], slots=2)
    starts = dict(launcher.starts)
    assert starts["wide"] == {"a"}  # one CPU free was enough
    # busy 3 of 2 while both run: nothing else starts until they are done
    assert starts["b"] == frozenset() and starts["c"] == {"b"}


def test_nothing_to_do():
    launcher = Launcher(Clock())
    assert execute(deque(), 2, launcher, lambda d: None) is True
    assert launcher.starts == []


# -- command line and environment -------------------------------------------------
SUITE = Suite("/usr/bin/python3", Path("/proj"), ("tests/test_a.py",), ("-x", "-k", "not slow"))


def argv_for(spec: RunSpec, profile_args=()) -> list[str]:
    return child_argv(SUITE, spec, Path("/work/runs/run-0003"), profile_args)


def plugin_args(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "-p"]


def test_child_argv_basics():
    spec = RunSpec(index=3, order="hash:99", random_seed=1234, workers=0)
    argv = argv_for(spec)
    assert argv[:3] == ["/usr/bin/python3", "-m", "pytest"]
    assert argv[3] == "tests/test_a.py"
    assert argv[4:7] == ["-x", "-k", "not slow"]  # the user's args, untouched
    plugins = plugin_args(argv)
    assert "flakehunt" in plugins
    assert "flakehunt.plugin" not in plugins
    assert not any(a.startswith("flakehunt.plugin") or a == "-pflakehunt.plugin" for a in argv)
    assert "no:randomly" in plugins and "no:cacheprovider" in plugins
    assert "--flakehunt-order=hash:99" in argv
    assert "--flakehunt-random-seed=1234" in argv
    assert "--numprocesses=0" in argv
    assert not any(a.startswith("--dist") for a in argv)
    assert not any(a.startswith("--count") for a in argv)
    assert "--flakehunt-out=/work/runs/run-0003" in argv
    assert "--junitxml=/work/runs/run-0003/junit.xml" in argv


def test_basetemp_is_inside_the_run_dir():
    argv = argv_for(RunSpec(index=0))
    [basetemp] = [a.split("=", 1)[1] for a in argv if a.startswith("--basetemp=")]
    assert Path(basetemp).parent == Path("/work/runs/run-0003")


def test_declared_order_is_not_passed():
    argv = argv_for(RunSpec(index=0, order="declared"))
    assert not any(a.startswith("--flakehunt-order") for a in argv)
    assert "--flakehunt-order=reverse" in argv_for(RunSpec(index=1, order="reverse"))


def test_workers_and_dist():
    argv = argv_for(RunSpec(index=0, workers=2, dist="loadscope"))
    assert "--numprocesses=2" in argv
    assert "--dist=loadscope" in argv


def test_count_only_when_more_than_one():
    assert not any("count" in a for a in argv_for(RunSpec(index=0, count=1)))
    argv = argv_for(RunSpec(index=0, count=5))
    assert "--flakehunt-count=5" in argv
    # the plugin repeats the test under its own id: no pytest-repeat, which renames it
    assert not any(a.startswith(("--count", "--repeat-scope")) for a in argv)


def test_explicit_tests_replace_the_selection():
    spec = RunSpec(index=0, tests=("tests/test_a.py::test_x", "tests/test_b.py::test_y[1]"))
    args = replay_args(SUITE, spec)
    assert args[:2] == ["tests/test_a.py::test_x", "tests/test_b.py::test_y[1]"]
    assert "tests/test_a.py" not in args


def test_profile_args_are_appended():
    argv = argv_for(RunSpec(index=0), ("--flakehunt-cpus=1",))
    assert "--flakehunt-cpus=1" in argv


def test_child_env_drops_pytest_variables_and_sets_hash_seed():
    base = {"PATH": "/bin", "HOME": "/root", "PYTEST_ADDOPTS": "-x --lf",
            "PYTEST_XDIST_WORKER": "gw3", "PYTEST_CURRENT_TEST": "x", "PYTHONHASHSEED": "random",
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    env = child_env(RunSpec(index=0, random_seed=77), base)
    assert env["PATH"] == "/bin" and env["HOME"] == "/root"
    for name in DROPPED_ENV:
        assert name not in env
    assert "PYTEST_ADDOPTS" not in env
    assert env["PYTHONHASHSEED"] == "77"
    assert base["PYTEST_ADDOPTS"] == "-x --lf"  # the caller's dict is not modified


def test_child_env_hash_seed_is_in_range():
    env = child_env(RunSpec(index=0, random_seed=2**40 + 5), {})
    assert 0 <= int(env["PYTHONHASHSEED"]) <= 4294967295


def test_child_env_defaults_to_os_environ(monkeypatch):
    monkeypatch.setenv("PYTEST_ADDOPTS", "-x")
    monkeypatch.setenv("FLAKEHUNT_TEST_MARKER", "kept")
    env = child_env(RunSpec(index=0, random_seed=5))
    assert "PYTEST_ADDOPTS" not in env
    assert env["FLAKEHUNT_TEST_MARKER"] == "kept"


def test_replay_command_parses_with_shlex_and_round_trips():
    suite = Suite("/usr/bin/python3", Path("/my proj"), ("tests/test a.py::test_x[a b]",),
                  ("-k", "x and not y"))
    spec = RunSpec(index=4, order="hash:12", random_seed=9, workers=2)
    cmd = replay_command(suite, spec, cwd=Path("/elsewhere"))
    words = shlex.split(cmd)
    assert words[:4] == ["cd", "/my proj", "&&", "PYTHONHASHSEED=9"]
    # a suite interpreter given with --python is printed as given
    assert words[4:] == ["/usr/bin/python3", "-m", "pytest", *replay_args(suite, spec)]
    assert not any(w.startswith(("--flakehunt-out", "--junitxml", "--basetemp")) for w in words)


def test_replay_command_without_cd_when_cwd_is_the_rootdir(tmp_path):
    suite = Suite(sys.executable, tmp_path, ("test_a.py",))
    spec = RunSpec(index=0, random_seed=3)
    cmd = replay_command(suite, spec, cwd=tmp_path)
    words = shlex.split(cmd)
    assert "cd" not in words
    assert words[0] == "PYTHONHASHSEED=3"
    assert words[1:] == ["python", "-m", "pytest", *replay_args(suite, spec)]
    # the same directory spelled differently still counts as the rootdir
    assert "cd" not in shlex.split(replay_command(suite, spec, cwd=tmp_path / "." / "sub" / ".."))
    assert shlex.split(replay_command(suite, spec))[0] == "cd"  # no cwd: always cd


def test_replay_command_cd_is_relative_when_the_rootdir_is_below_cwd(tmp_path):
    root = tmp_path / "examples" / "web suite"
    root.mkdir(parents=True)
    suite = Suite(sys.executable, root, ("tests",))
    words = shlex.split(replay_command(suite, RunSpec(index=0, random_seed=1), cwd=tmp_path))
    assert words[:3] == ["cd", "examples/web suite", "&&"]



def test_a_run_done_before_an_interrupt_is_reported_once():
    clock = Clock()
    launcher = Launcher(clock)
    seen = []

    def on_done(d):
        seen.append((d.job.name, d.status))
        if d.job.name == "a":
            raise KeyboardInterrupt  # e.g. Ctrl-C while the finished run was parsed

    with pytest.raises(KeyboardInterrupt):
        execute(deque([Job("a", duration=1), Job("b", duration=50)]), 2, launcher, on_done,
                clock=clock, sleep=clock.sleep)
    assert seen == [("a", "ok"), ("b", "interrupted")]


def test_each_run_gets_its_own_temporary_directory(tmp_path):
    env = child_env(RunSpec(index=0, random_seed=1), {"TMPDIR": "/tmp"}, tmpdir=tmp_path)
    assert env["TMPDIR"] == str(tmp_path)
    assert child_env(RunSpec(index=0, random_seed=1), {"TMPDIR": "/x"})["TMPDIR"] == "/x"


def test_the_workers_record_counts_warm_and_fresh_workers_and_why():
    from flakehunt.wire import workers

    text = "warm 12\nfresh No such file or directory\nwarm 13\nfresh No such file or directory\n"
    assert workers(text) == {"warm": 2, "fresh": 2,
                             "fresh_why": {"No such file or directory": 2}}
    assert workers("") == {"warm": 0, "fresh": 0}


def test_a_worker_hands_its_environment_and_cwd_over_intact():
    from flakehunt.zygote import decode, encode

    env = {"A": "1", "EMPTY": "", "EQ": "x=y", "UNI": "é"}
    assert decode(encode(env, "/some/where")) == ("/some/where", env)


def test_children_share_a_bytecode_cache_beside_their_modules(tmp_path):
    child = tmp_path / "cache" / "child-abc"
    env = child_env(RunSpec(index=0), {"PYTHONDONTWRITEBYTECODE": "1"}, child_path=child)
    assert env["PYTHONPYCACHEPREFIX"] == str(tmp_path / "cache" / "pycache")
    assert "PYTHONDONTWRITEBYTECODE" not in env
    own = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": "/mine"}
    env = child_env(RunSpec(index=0), own, child_path=child)  # the caller's own: kept
    assert (env["PYTHONPYCACHEPREFIX"], env["PYTHONDONTWRITEBYTECODE"]) == ("/mine", "1")
    assert "PYTHONPYCACHEPREFIX" not in child_env(RunSpec(index=0), {})
