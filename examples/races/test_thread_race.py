import threading
import time

from calibrate import burn


def test_worker_beats_the_deadline():
    """The worker needs ~30 ms of CPU; the test waits 50 ms for it."""
    done = threading.Event()

    def work():
        burn(30)
        done.set()

    threading.Thread(target=work).start()
    time.sleep(0.05)
    assert done.is_set()


def _noop():
    pass


def test_counter_has_every_increment():
    """Read, call, write: a thread switch inside that window loses an update."""
    counter = {"n": 0}

    def bump():
        for _ in range(5000):
            value = counter["n"]
            _noop()
            counter["n"] = value + 1

    threads = [threading.Thread(target=bump) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter["n"] == 10000
