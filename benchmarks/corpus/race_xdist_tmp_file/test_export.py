import os
import tempfile
import time
from pathlib import Path

import pytest


@pytest.fixture
def export_file():
    return Path(tempfile.gettempdir()) / "corpus-export.csv"  # one fixed name


def _export(path, rows):
    path.write_text(f"{os.getpid()}\n" + "\n".join(rows))
    time.sleep(0.15)
    return path.read_text().splitlines()


def test_export_users(export_file):
    assert _export(export_file, ["ann", "bob"])[0] == str(os.getpid())


def test_header_format():
    assert "a,b".count(",") == 1


def test_export_orders(export_file):
    assert _export(export_file, ["o1"])[0] == str(os.getpid())


def test_row_format():
    assert "x".upper() == "X"
