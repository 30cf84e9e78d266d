"""Starts a helper process that writes a ready file once it has warmed up."""
import subprocess
import sys

CHILD = """
import sys, time
t = time.perf_counter()
x = 0
while time.perf_counter() - t < {warm}:
    x += 1
open(sys.argv[1], "w").write("ready")
"""


def start(ready_path, warm=0.010):
    return subprocess.Popen([sys.executable, "-S", "-c", CHILD.format(warm=warm),
                             str(ready_path)])
