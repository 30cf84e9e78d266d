"""The warm parent: a process that has imported pytest, its plugins, flakehunt's plugin
and the suite's installed dependencies once, and forks one child per run.

Child side (Python 3.9, the suite's interpreter; started by :mod:`flakehunt.pool` as
``runpy.run_path(".../flakehunt/warm.py")``: it imports nothing of flakehunt before
pytest does) in the suite's rootdir, with
the run environment and its own ``PYTHONHASHSEED``). It speaks JSON lines: requests
on stdin, replies on what was stdout (stdout itself goes to stderr, so nothing an
import prints can garble a reply):

- first request ``{"preload": [[module, file], ...]}``; reply ``{"ready": true,
  "preloaded": n}`` or ``{"ready": false, "why": ..., "safe": k}`` (the first ``k``
  modules were safe; then it exits);
- ``{"id": i, "args": [...], "cwd": ..., "env": {...}, "log": ...}``: fork a child in its
  own session that runs ``python -m pytest ARGS`` as a fresh process would (cwd,
  environment, ``sys.argv``, output to ``log``, atexit handlers and non-daemon threads
  at the end); reply ``{"id": i, "pid": pid}``;
- each child that ends: ``{"exit": pid, "code": c, "cpu": s}`` (``-N``: killed by signal
  N; ``s``: the CPU seconds, user and system, of the child and the processes it waited
  for, as ``wait4`` reports them).

End of stdin: the parent waits for its children, reports them, and exits.

Forking is only safe from a single-threaded process that shares nothing a child could
trip over: the parent checks after its imports that it runs one thread and holds no
file descriptor it did not start with, and refuses to serve otherwise. The suite's own
modules are never imported here, so every run starts from fresh suite state.
:func:`snapshot` and :func:`preloadable` (called in the collecting child) say which
modules the suite's collection imported from installed packages.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import json
import os
import select
import signal
import sys
import sysconfig
import tempfile
import threading
import traceback
import warnings
from typing import Any

#: what the collecting child held before the suite's conftests loaded (see snapshot)
EARLY: dict[str, Any] = {}
#: flakehunt's child modules a run loads, and pytest-xdist's controller
BASE = ("pytest", "flakehunt.plugin", "flakehunt.recorder", "flakehunt.probes",
        "flakehunt.watch", "flakehunt.perturb", "flakehunt.repeat", "flakehunt.split",
        "xdist.dsession", "xdist.looponfail")
#: environment variables a run may differ in from its warm parent without mattering
PER_RUN_ENV = ("TMPDIR", "PYTHONHASHSEED", "PYTEST_CURRENT_TEST", "PYTEST_VERSION")


# -- in the collecting child: what may be preloaded ----------------------------------------
def snapshot() -> None:
    """Before the suite's conftests load: the modules and environment pytest and its
    plugins set up (``pytest_load_initial_conftests``)."""
    EARLY["modules"] = set(sys.modules)
    EARLY["env"] = env_view(os.environ)


def env_view(env: Any) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in PER_RUN_ENV}


def installed_roots() -> list[str]:
    paths = sysconfig.get_paths()
    roots = {os.path.realpath(paths[k]) for k in ("stdlib", "platstdlib", "purelib", "platlib")
             if paths.get(k)}
    return sorted(roots)


def preloadable(rootdir: str) -> dict[str, Any]:
    """Modules the collection imported from installed packages (the standard library,
    site-packages), in import order, each with its file; never one of the suite's own.
    A suite that changed ``os.environ`` while collecting may configure a library before
    importing it: then only what was imported before its conftests is preloaded."""
    roots = installed_roots()
    limited = ""
    names = list(sys.modules)
    if EARLY and env_view(os.environ) != EARLY["env"]:
        limited = "the suite changes os.environ while collecting"
        names = [n for n in names if n in EARLY["modules"]]
    out = []
    for name in names:
        file = getattr(sys.modules.get(name), "__file__", None)
        if not file or name == "__main__" or name.startswith("flakehunt"):
            continue
        real = os.path.realpath(file)
        if any(real.startswith(root + os.sep) for root in roots):
            out.append([name, real])
    return {"modules": out, "limited": limited, "rootdir": rootdir}


# -- in the warm parent ---------------------------------------------------------------------

def threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def open_fds() -> set:
    for where in ("/proc/self/fd", "/dev/fd"):
        try:
            return set(os.listdir(where))
        except OSError:
            continue
    return set()


def unsafe(baseline: set) -> str:
    """Why forking now would not be safe ('' when it is)."""
    if threads() > 1:
        return f"{threads()} threads running"
    own = suite_module()
    if own:
        return f"the suite's own module {own} was imported"
    extra = open_fds() - baseline
    if extra:
        return f"file descriptor(s) {', '.join(sorted(extra))} left open"
    return ""


class Warmed(Exception):
    """pytest's start-up got as far as the suite's conftests: stop there."""


class StopBeforeConftests:
    def pytest_load_initial_conftests(self) -> None:
        raise Warmed


def suite_module() -> str:
    """A module imported from the suite's rootdir (the cwd), not from an installation
    (nor flakehunt's own, whose child folder may be anywhere)."""
    here, roots = os.getcwd() + os.sep, installed_roots()
    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] == "flakehunt":
            continue
        file = getattr(module, "__file__", None)
        real = os.path.realpath(file) if file else ""
        if real.startswith(here) and not any(real.startswith(r + os.sep) for r in roots):
            return name
    return ""


def import_base() -> None:
    """What every run imports before it reads the suite: pytest's own start-up up to
    the suite's conftests (its built-in plugins, the installed ones with pytest's
    assertion rewriting, as a run would import them, so no run warns that they were
    imported before it could rewrite them), then flakehunt's child modules."""
    import pytest

    stop = pytest.hookimpl(tryfirst=True)(StopBeforeConftests.pytest_load_initial_conftests)
    StopBeforeConftests.pytest_load_initial_conftests = stop  # type: ignore[method-assign]
    try:  # should the stop not come: no conftest, and a path that collects nothing
        pytest.main(["--noconftest", "-p", "no:randomly", "-p", "no:cacheprovider",
                     "-p", "flakehunt", os.path.join(os.devnull, "nothing")],
                    plugins=[StopBeforeConftests()])
    except Warmed:
        pass
    for name in BASE:
        quiet_import(name)


def quiet_import(name: str) -> bool:
    try:
        importlib.import_module(name)
        return True
    except BaseException:  # noqa: BLE001 - an optional module: the run imports it itself
        return False


def preload(modules: list[list[str]], baseline: set) -> tuple[int, str]:
    """Import ``modules`` in order, checking after each; (how many were safe, why not).
    A module that warns when imported is not safe either: each run must see its
    warning (in its summary, or as an error under ``filterwarnings = error``)."""
    for k, (name, file) in enumerate(modules):
        if name in sys.modules:
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if not quiet_import(name):
                continue
        if caught:
            return k, f"importing {name}: it warns ({caught[0].category.__name__})"
        got = getattr(sys.modules.get(name), "__file__", None)
        why = unsafe(baseline)
        if got and os.path.realpath(got) != file:
            why = f"{name} resolved to {got}, not {file}"
        if why:
            return k, f"importing {name}: {why}"
    return len(modules), ""


def prime() -> None:
    """Fill, once in the parent, the caches every run fills the same way, so no run
    pays for them: inspect's map of module files (the first failure's traceback looks
    its frames' modules up by file, and the first lookup walks every imported module:
    a thousand ``realpath`` calls after a preload), tokenize's regex (compiled on first
    use, to find where a statement shown in a traceback ends) and the one pytest's JUnit
    XML escapes text with. Each is a pure cache: a run gets from it what it would have
    computed itself (inspect looks a module up again when its ``__file__`` changed).
    Measured on a 4-test suite: about a tenth of a warm run's CPU."""
    import inspect
    import io
    import tokenize

    inspect.getmodule(compile("", "<flakehunt: inspect's module map>", "exec"))
    for _ in tokenize.generate_tokens(io.StringIO("pass\n").readline):
        pass
    junitxml = sys.modules.get("_pytest.junitxml")
    escape = getattr(junitxml, "bin_xml_escape", None)
    if callable(escape):
        escape("")


def serve() -> None:
    reply_fd = os.dup(1)
    os.dup2(2, 1)  # what imports print goes to the log, never into a reply
    reply = os.fdopen(reply_fd, "w", buffering=1)
    sys.path[0:1] = [os.getcwd()]  # as `python -m pytest` has it
    request = json.loads(sys.stdin.readline() or "{}")
    baseline = open_fds()
    import_base()
    why = unsafe(baseline)
    if why:
        send(reply, {"ready": False, "why": f"after importing pytest: {why}", "safe": 0})
        return
    baseline = open_fds()
    modules = request.get("preload") or []
    safe, why = preload(modules, baseline)
    if why:
        send(reply, {"ready": False, "why": why, "safe": safe})
        return
    try:
        prime()
    except Exception:  # noqa: BLE001 - a cache left empty: each run fills its own
        pass
    why = unsafe(baseline)  # priming reads every module: a lazy one loads then
    if why:
        send(reply, {"ready": False, "why": f"after priming caches: {why}", "safe": safe})
        return
    send(reply, {"ready": True, "preloaded": len(modules)})
    Server(reply, reply_fd).loop()


def send(reply: Any, message: dict[str, Any]) -> None:
    reply.write(json.dumps(message) + "\n")
    reply.flush()


class Server:
    def __init__(self, reply: Any, reply_fd: int) -> None:
        self.reply = reply
        self.reply_fd = reply_fd
        self.children: set = set()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)

    def loop(self) -> None:
        stdin = sys.stdin.fileno()
        buffer = b""
        reading = True
        while reading or self.children:
            ready, _, _ = select.select([stdin, self.wake_r] if reading else [self.wake_r],
                                       [], [], 1.0)
            if self.wake_r in ready:
                os.read(self.wake_r, 4096)
            if stdin in ready:
                chunk = os.read(stdin, 65536)
                reading = bool(chunk)
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    self.fork(json.loads(line))
            self.reap()

    def reap(self) -> None:
        while self.children:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            self.children.discard(pid)
            send(self.reply, {"exit": pid, "code": exit_code(status),
                              "cpu": round(usage.ru_utime + usage.ru_stime, 3)})

    def fork(self, request: dict[str, Any]) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        gc.freeze()  # the children's collections never walk (and copy) the parent's objects
        pid = os.fork()
        if pid == 0:
            self.in_child(request)  # never returns
        self.children.add(pid)
        send(self.reply, {"id": request["id"], "pid": pid})

    def in_child(self, request: dict[str, Any]) -> None:
        code = 1
        try:
            os.setsid()
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for fd in (self.wake_r, self.wake_w, self.reply_fd):
                os.close(fd)
            become_run(request)
            code = run_pytest(request)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # noqa: BLE001 - as an uncaught exception would end it
            traceback.print_exc()
        finally:
            os._exit(finish(code))


def exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1


def become_run(request: dict[str, Any]) -> None:
    """Turn the forked child into the run's fresh process: output, cwd, environment,
    argv, temporary directory, random state."""
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.close(null)
    import pytest

    main = os.path.join(os.path.dirname(pytest.__file__), "__main__.py")
    main_module = importlib.import_module("pytest.__main__")  # guarded: runs nothing
    # as under `python -m pytest` (multiprocessing reads __main__)
    become_fresh(request["cwd"], request["env"], [main, *request["args"]], main_module,
                 request["cwd"])
    if os.environ.get("PYTHONFAULTHANDLER"):
        import faulthandler

        faulthandler.enable()


def become_fresh(cwd: str, env: dict[str, str], argv: list[str], main: Any,
                 path0: str) -> None:
    """What a fresh interpreter started there would have: its cwd, environment,
    ``sys.argv``, ``sys.path[0]`` and ``__main__``; ``TMPDIR`` read again; numpy's
    global random state reseeded as a fresh import would (``random`` reseeds itself
    after a fork)."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.path[0:1] = [path0]
    sys.argv = argv
    sys.modules["__main__"] = main
    tempfile.tempdir = None
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        numpy_random.seed()


def run_pytest(request: dict[str, Any]) -> int:
    """pytest as ``python -m pytest`` runs it; a run with xdist workers gets them forked
    from a zygote (flakehunt.zygote) where one can be made."""
    import pytest

    if not any(arg.startswith("--numprocesses=") and arg != "--numprocesses=0"
               for arg in request["args"]):
        return int(pytest.console_main())
    try:
        from flakehunt import zygote
        from flakehunt.wire import WORKERS
    except ImportError:  # an older copy of the child side: fresh workers
        return int(pytest.console_main())

    spec = zygote.start(os.path.join(os.path.dirname(request["log"]), WORKERS))
    try:
        code = pytest.main(plugins=[WarmWorkers(spec)] if spec else [])
        sys.stdout.flush()
    finally:
        zygote.stop()
    return int(code)


class WarmWorkers:
    """Starts pytest-xdist's local workers through the zygote: ``popen`` becomes
    ``popen//python=CLIENT`` (before xdist reads its specs, at session start)."""

    def __init__(self, spec: str) -> None:
        self.spec = spec

    def pytest_configure(self, config: Any) -> None:
        tx = getattr(config.option, "tx", None)
        if tx:
            config.option.tx = [f"popen//python={self.spec}" if t == "popen" else t
                                for t in tx]


def finish(code: int | None) -> int:
    """What the interpreter does at exit: wait for non-daemon threads, run atexit
    handlers, flush the standard streams."""
    try:
        threading._shutdown()  # type: ignore[attr-defined]
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001 - exiting anyway
        pass
    return code if code is not None else 0


if __name__ == "__main__":
    serve()
