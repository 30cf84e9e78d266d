"""Child processes for real: a process group, and a profile applied once the run's
tests start (the deferred attach)."""

from __future__ import annotations

import sys

from flakehunt.runner import Process


class Throttle:
    def __init__(self):
        self.pids: list[int] = []

    def __call__(self, pid):
        self.pids.append(pid)
        return self

    def stop(self):
        return {"applied": len(self.pids)}


def test_a_deferred_attach_waits_for_the_marker(tmp_path):
    marker, released = tmp_path / "tests-started", tmp_path / "tests-started.applied"
    marker.touch()
    released.touch()  # left by an earlier hunt in a reused folder
    throttle = Throttle()
    proc = Process([sys.executable, "-c", "import time; time.sleep(30)"], {}, tmp_path,
                   tmp_path / "log", attach=throttle, attach_when=marker, released=released)
    try:
        assert proc.poll() is None and proc.waiting and throttle.pids == []
        assert not released.exists()
        marker.touch()
        assert proc.poll() is None and not proc.waiting
        assert throttle.pids == [proc.proc.pid] and released.exists()
        proc.poll()
        assert throttle.pids == [proc.proc.pid]  # applied once
    finally:
        proc.kill(grace=0)
    assert proc.applied["applied"] == 1 and proc.applied["applied_after_s"] >= 0


def test_a_deferred_attach_never_applies_to_a_run_that_ended_first(tmp_path):
    throttle = Throttle()
    proc = Process([sys.executable, "-c", "pass"], {}, tmp_path, tmp_path / "log",
                   attach=throttle, attach_when=tmp_path / "never")
    proc.proc.wait()
    assert proc.poll() == 0 and not proc.waiting and throttle.pids == []
