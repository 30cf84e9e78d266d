"""A background indexer thread: CPU work, then it marks itself done."""
import threading

from calibrate import burn


class Indexer:
    def __init__(self, work_ms):
        self.work_ms = work_ms
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()

    def _run(self):
        burn(self.work_ms)
        self.done.set()
