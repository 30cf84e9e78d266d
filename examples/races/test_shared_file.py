import os
import tempfile
import time
from pathlib import Path

REPORT = Path(tempfile.gettempdir()) / "flakehunt-races-report.txt"  # one fixed path


def write_and_check(tag: str) -> None:
    me = f"{tag}-{os.getpid()}"
    REPORT.write_text(me)
    time.sleep(0.1)
    assert REPORT.read_text() == me


def test_report_a():
    write_and_check("a")


def test_report_b():
    write_and_check("b")
