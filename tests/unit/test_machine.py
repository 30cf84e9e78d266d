"""profiles: what the parent reads of this machine to decide how runs share it."""

from __future__ import annotations

from flakehunt import profiles


def test_memory_to_spare_reads_memavailable_against_memtotal(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       1000 kB\nMemFree:         10 kB\nMemAvailable:    200 kB\n")
    assert profiles.memory_to_spare(meminfo)
    meminfo.write_text("MemTotal:       1000 kB\nMemAvailable:    199 kB\n")
    assert not profiles.memory_to_spare(meminfo)
    meminfo.write_text("MemTotal:       1000 kB\n")  # an old kernel: no MemAvailable
    assert not profiles.memory_to_spare(meminfo)
    assert not profiles.memory_to_spare(tmp_path / "missing")
