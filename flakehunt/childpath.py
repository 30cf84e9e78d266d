"""The child side on the suite's own interpreter, with nothing installed there.

Every child pytest gets ``PYTHONPATH`` to a folder holding a ``flakehunt`` package of the
child-side modules only (:data:`CHILD_MODULES`, copied from this installation) and an
``__init__`` that exposes the plugin's hooks, so ``-p flakehunt`` loads the plugin
whether or not flakehunt is installed where the suite runs (where it is, its
``pytest11`` entry point imports ``flakehunt.plugin``, found first in the same folder).
The suite's interpreter may be older than flakehunt's own: the child side keeps to
Python 3.9. The folder is named after a digest of its files and kept under the user's
cache, so a replay command printed with it keeps working after the hunt.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

#: the modules a child pytest imports (the plugin and what it loads), nothing else
CHILD_MODULES = ("plugin", "recorder", "probes", "perturb", "split", "testid", "repeat", "ordering",
                 "wire", "watch", "warm", "owners", "snapshot", "reset", "resources", "zygote",
                 "tracebacks")

INIT = '''"""flakehunt's child side, copied by flakehunt for a child pytest (generated)."""

from flakehunt.plugin import *  # noqa: F403 - the hooks, for `-p flakehunt`
'''

PACKAGE = Path(__file__).resolve().parent


def digest() -> str:
    h = hashlib.sha256(INIT.encode())
    for name in CHILD_MODULES:
        h.update((PACKAGE / f"{name}.py").read_bytes())
    return h.hexdigest()[:16]


def cache_roots() -> list[Path]:
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return [base / "flakehunt", Path(tempfile.gettempdir()) / f"flakehunt-{os.getuid()}"]


def ensure() -> Path:
    """The folder to put first on a child's ``PYTHONPATH`` (made on first use)."""
    name = f"child-{digest()}"
    errors = []
    for root in cache_roots():
        target = root / name
        if (target / "flakehunt" / "__init__.py").exists():
            return target
        try:
            return build(root, target)
        except OSError as exc:
            errors.append(f"{root}: {exc.strerror or exc}")
    raise OSError("cannot write flakehunt's child modules: " + "; ".join(errors))


def build(root: Path, target: Path) -> Path:
    """Write the package beside ``target``, then move it in place in one rename (two
    hunts starting at once both end with a whole folder)."""
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    try:
        pkg = staging / "flakehunt"
        pkg.mkdir()
        for name in CHILD_MODULES:
            shutil.copyfile(PACKAGE / f"{name}.py", pkg / f"{name}.py")
        (pkg / "__init__.py").write_text(INIT, encoding="utf-8")
        try:
            staging.rename(target)
        except OSError:
            if not (target / "flakehunt" / "__init__.py").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def pycache(child_path: Path) -> Path:
    """The bytecode cache the children share (``PYTHONPYCACHEPREFIX``), beside the child
    modules: compiled once, never written into the suite's tree."""
    return child_path.parent / "pycache"


def pythonpath(child_path: Path, base: str | None) -> str:
    """``child_path`` first, then the caller's own ``PYTHONPATH`` (``base``)."""
    return os.pathsep.join([str(child_path), *([base] if base else [])])


def replay_prefix(python: str, child_path: Path | None) -> str:
    """What a printed replay command needs in front: nothing when the suite runs on
    flakehunt's own interpreter (the plugin is installed there), else the folder."""
    if child_path is None or python == sys.executable:
        return ""
    value = pythonpath(child_path, os.environ.get("PYTHONPATH"))
    return f"PYTHONPATH={shlex.quote(value)} "
