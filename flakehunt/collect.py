"""Ask the suite's own pytest what the selection collects, once, before planning."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flakehunt.command import collect_argv, collect_env
from flakehunt.errors import NoTestsError, SuiteError
from flakehunt.runner import Process
from flakehunt.wire import COLLECTED, OPT_OUT


@dataclass(frozen=True)
class Collected:
    rootdir: Path
    nodeids: tuple[str, ...]
    selection: tuple[str, ...]  # the user's selection, relative to rootdir
    meta: dict[str, Any]


#: what the suite's environment must have: (the option pytest lacks without it, package);
#: flakehunt's own plugin comes from flakehunt's files (flakehunt.childpath)
REQUIRED = (("--numprocesses", "pytest-xdist"),)


def missing_hint(output: str, python: str) -> str | None:
    """One line saying what the suite's interpreter lacks and how to install it."""
    if "No module named pytest" in output:
        missing = ["pytest", *(pkg for _, pkg in REQUIRED)]
    else:
        unknown = [line for line in output.splitlines() if "unrecognized arguments" in line]
        missing = [pkg for opt, pkg in REQUIRED if any(opt in line for line in unknown)]
    if missing:
        return (f"{python} lacks {', '.join(missing)}: run `{python} -m pip install "
                f"{' '.join(missing)}` (flakehunt's own plugin needs nothing installed there)")
    if 'Error importing plugin "flakehunt' in output or "--flakehunt-out" in output:
        return (f"{python} cannot load flakehunt's plugin (it needs Python 3.9 or later): "
                + tail(output, 1))
    return None


def tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def collect(python: str, selection: tuple[str, ...], pytest_args: tuple[str, ...],
            cwd: Path, outdir: Path, timeout: float = 600,
            child_path: Path | None = None) -> Collected:
    """``child_path``: where the children load the plugin from (flakehunt.childpath)."""
    outdir.mkdir(parents=True, exist_ok=True)
    argv = [*collect_argv(python, selection, pytest_args),
            # fail here, once, when the suite's env lacks pytest-xdist (follow-ups repeat
            # tests with the plugin's --flakehunt-count: pytest-repeat is not needed there)
            "--numprocesses=0",
            f"{OPT_OUT}={outdir}", f"--basetemp={outdir / 'tmp'}"]
    log = outdir / "output.log"
    try:
        proc = Process(argv, collect_env(child_path), cwd, log)
    except FileNotFoundError:
        raise SuiteError(f"interpreter not found: {python}") from None
    except PermissionError:
        raise SuiteError(f"interpreter not executable: {python}") from None
    try:
        deadline = time.monotonic() + timeout
        while (returncode := proc.poll()) is None:
            if time.monotonic() > deadline:
                raise SuiteError(f"collection took longer than {timeout:.0f}s "
                                 f"(--run-timeout); it was stopped")
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.kill()  # the whole group: what the suite started while collecting too
    output = log.read_text(encoding="utf-8", errors="replace")
    if returncode == 5:
        raise NoTestsError(f"no tests collected from {' '.join(selection) or 'the rootdir'}")
    hint = missing_hint(output, python) if returncode != 0 else None
    if hint:
        raise SuiteError(hint)
    for line in output.splitlines():
        for prefix in ("ERROR: file or directory not found:", "ERROR: not found:"):
            if line.startswith(prefix):
                raise SuiteError(line.removeprefix("ERROR: ").strip())
    result = outdir / COLLECTED
    if returncode != 0 or not result.exists():
        raise SuiteError(f"pytest could not collect the suite (exit {returncode}):\n"
                         f"{tail(output)}")
    data = json.loads(result.read_text(encoding="utf-8"))
    rootdir = Path(data.pop("rootdir"))
    nodeids = tuple(data.pop("nodeids"))
    if not nodeids:
        raise NoTestsError("no tests collected")
    return Collected(rootdir, nodeids, relative_selection(selection, cwd, rootdir), data)


def relative_selection(selection: tuple[str, ...], cwd: Path, rootdir: Path) -> tuple[str, ...]:
    """The user's selection as seen from ``rootdir``, where the children run."""
    if not selection:
        if cwd.resolve() == rootdir.resolve():
            return ()
        return (os.path.relpath(cwd, rootdir),)
    out = []
    for arg in selection:
        path, sep, rest = arg.partition("::")
        full = (cwd / path)
        if full.exists():
            path = os.path.relpath(full, rootdir)
        out.append(path + sep + rest)
    return tuple(out)
