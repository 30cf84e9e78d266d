import subprocess
import sys
import threading

import pytest


@pytest.fixture
def lock():
    return threading.Lock()


def test_locked_counter(lock):
    box = {"n": 0}

    def bump():
        for _ in range(2000):
            with lock:
                box["n"] += 1

    ts = [threading.Thread(target=bump) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert box["n"] == 4000


def test_worker_joined():
    done = []
    t = threading.Thread(target=lambda: done.append(sum(range(100_000))))
    t.start()
    t.join()
    assert done


def test_subprocess_waited(tmp_path):
    out = tmp_path / "out"
    subprocess.run([sys.executable, "-S", "-c", f"open({str(out)!r}, 'w').write('ok')"],
                   check=True, timeout=60)
    assert out.read_text() == "ok"
