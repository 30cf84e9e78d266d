"""Child side: who owns an object - the fixture values that reach it, and how.

A fixture's value reaches an object through attributes, container items (dict
values, list/tuple/set/deque items), closures and bound methods; :func:`walk` follows
those edges breadth first, to a bounded depth and a bounded number of objects, so a
client kept in a dict a module-scoped fixture returns is still that fixture's.
:func:`holders` finds the objects that keep a given event loop as an attribute,
searched from the failing frames' locals and the fixtures' values.

Best effort, like every probe: nothing here may raise into a test, or change it.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import types
from collections.abc import Iterator

SCALARS = (int, float, str, bool, bytes, complex, type(None))
#: what a walk never enters: modules, classes, code (their contents belong to everyone)
OPAQUE = (types.ModuleType, type, types.CodeType, types.FrameType, types.BuiltinFunctionType)
SEQUENCES = (list, tuple, set, frozenset, collections.deque)
#: how deep a walk goes from a root, and how many objects it visits at most
DEPTH = 4
BUDGET = 2000
#: attributes or items read per object, at most
WIDTH = 60


def shared(obj: object) -> bool:
    """One object wherever it appears (None, bools, numbers, interned strings, the
    empty tuple): reaching it ties nothing to anything, and no name of it owns it."""
    kind = type(obj)
    return isinstance(obj, SCALARS) or ((kind is tuple or kind is frozenset) and not obj)


def edges(obj: object) -> list[tuple[str, object]]:
    """The objects one step from ``obj``, each with the step's path text."""
    out: list[tuple[str, object]] = []
    if isinstance(obj, dict):
        return [(f"[{k!r}]"[:40], v) for k, v in list(itertools.islice(obj.items(), WIDTH))]
    if isinstance(obj, SEQUENCES):
        return [(f"[{i}]", v) for i, v in enumerate(list(itertools.islice(obj, WIDTH)))]
    if isinstance(obj, types.MethodType):
        return [(".__self__", obj.__self__), (".__func__", obj.__func__)]
    if isinstance(obj, types.FunctionType):
        cells = obj.__closure__ or ()
        names = obj.__code__.co_freevars
        return [(f"<closure {n}>", c.cell_contents) for n, c in zip(names, cells)  # noqa: B905 - 3.9
                if _filled(c)]
    attrs = getattr(obj, "__dict__", None)
    if isinstance(attrs, dict):
        out = [(f".{a}", v) for a, v in list(itertools.islice(attrs.items(), WIDTH))]
    for slot in getattr(type(obj), "__slots__", ()) or ():
        if isinstance(slot, str) and hasattr(obj, slot) and len(out) < WIDTH:
            out.append((f".{slot}", getattr(obj, slot)))
    return out


def _filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


def walk(root: object, depth: int = DEPTH, budget: int = BUDGET
         ) -> Iterator[tuple[object, str]]:
    """``root`` and every object reachable from it, breadth first, with its path; each
    object once; never into modules, classes, code or scalars."""
    seen = {id(root)}
    todo: collections.deque[tuple[object, str, int]] = collections.deque([(root, "", 0)])
    while todo and budget > 0:
        obj, path, level = todo.popleft()
        budget -= 1
        yield obj, path
        if level >= depth or isinstance(obj, SCALARS + OPAQUE) \
                or isinstance(obj, asyncio.AbstractEventLoop):
            continue
        try:
            nxt = edges(obj)
        except Exception:
            continue
        for step, child in nxt:
            if id(child) not in seen and not shared(child):
                seen.add(id(child))
                todo.append((child, path + step, level + 1))


def reach(value: object, depth: int = DEPTH, budget: int = BUDGET) -> dict[int, str]:
    """ids of a fixture value and of the objects it reaches, with the path."""
    out: dict[int, str] = {}
    for obj, path in walk(value, depth, budget):
        out.setdefault(id(obj), path)
    return out


def owner_map(values: dict[str, object]) -> dict[int, tuple[str, str]]:
    """Object id -> (fixture, path) for every object the fixtures' values reach; the
    nearest fixture wins (shorter paths first, then the order given)."""
    found: dict[int, tuple[str, str]] = {}
    for name, value in values.items():
        for oid, path in reach(value).items():
            old = found.get(oid)
            if old is None or path.count(".") + path.count("[") < \
                    old[1].count(".") + old[1].count("["):
                found[oid] = (name, path)
    return found


def holds(obj: object, loop: asyncio.AbstractEventLoop) -> str | None:
    """The attribute of ``obj`` that keeps ``loop`` (or an object bound to it), if any."""
    if obj is loop or isinstance(obj, SCALARS + OPAQUE) or isinstance(obj, dict):
        return None
    attrs = getattr(obj, "__dict__", None)
    if not isinstance(attrs, dict):
        return None
    items = list(itertools.islice(attrs.items(), WIDTH))
    for attr, v in items:
        if v is loop:
            return attr
    for attr, v in items:
        if isinstance(v, asyncio.AbstractEventLoop):
            continue
        inner = getattr(v, "__dict__", None)
        if isinstance(inner, dict) and inner.get("_loop") is loop:
            return attr
        if isinstance(v, asyncio.Future) and v.get_loop() is loop:
            return attr
    return None


def holders(loop: asyncio.AbstractEventLoop, roots: list[tuple[str, object]],
            depth: int = 2) -> Iterator[tuple[object, str, str]]:
    """(holder, attribute, the root's name + path to it) for each object reachable from
    the roots within ``depth`` steps that keeps ``loop``."""
    seen: set[int] = set()
    for name, root in roots:
        for obj, path in walk(root, depth, 300):
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            attr = holds(obj, loop)
            if attr is not None:
                yield obj, attr, name + path
