"""``[tool.flakehunt]`` in pyproject.toml, as click's ``default_map``.

The one place precedence is decided: a value on the command line beats the
file, the file beats the built-in default, and click applies both through the
same option types and callbacks, so a value is checked the same wherever it
comes from. Keys are option names, with dashes or underscores (``fail-on``,
``fail_on``, ``no-classify``); top-level keys apply to every command that has
the option, a ``[tool.flakehunt.COMMAND]`` table to that command only. An
unknown key is an error, so a typo does not silently do nothing.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import click

from flakehunt.errors import UsageError

#: keys that are no click option but are still configurable, per command
EXTRA = {"run": {"pytest-args": "pytest_args", "pytest_args": "pytest_args"}}


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml from ``start`` up, not above the repository's root."""
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file():
            return folder / "pyproject.toml"
        if (folder / ".git").exists():
            return None
    return None


def read_toml(path: Path, what: str = "") -> dict:
    """A TOML file, or one UsageError line saying why not."""
    label = f"{what} {path}".strip()
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {label}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{label} is not valid TOML: {exc}") from None


def read(path: Path) -> dict:
    data = read_toml(path)
    table = data.get("tool", {}).get("flakehunt", {})
    if not isinstance(table, dict):
        raise UsageError(f"{path}: [tool.flakehunt] must be a table")
    return table


def keys(name: str, cmd: click.Command) -> dict[str, click.Parameter]:
    """Config key -> parameter, for every spelling of every parameter of ``cmd``."""
    out: dict[str, click.Parameter] = {}
    for p in cmd.params:
        if p.name is None or p.name == "help":
            continue
        spellings = {p.name, p.name.replace("_", "-")}
        spellings |= {o[2:] for o in getattr(p, "opts", ()) if o.startswith("--")}
        for s in spellings:
            out[s] = out[s.replace("-", "_")] = p
    for key, target in EXTRA.get(name, {}).items():
        out[key] = click.Option([f"--{target}"], multiple=True)
    return out


def convert(param: click.Parameter, value: object) -> object:
    """TOML lists for comma-separated options (``workers = [0, 2]``) become ``"0,2"``."""
    if isinstance(value, list) and not (param.multiple or param.nargs == -1):
        return ",".join(str(v) for v in value)
    return value


def default_map(table: dict, commands: dict[str, click.Command], source: str) -> dict:
    known = {name: keys(name, cmd) for name, cmd in commands.items()}
    out: dict[str, dict] = {name: {} for name in commands}

    def put(command: str, key: str, value: object) -> bool:
        param = known[command].get(key)
        if param is None:
            return False
        out[command][param.name] = convert(param, value)
        return True

    for key, value in table.items():
        if key in commands and isinstance(value, dict):
            continue
        if not [put(name, key, value) for name in commands if key in known[name]]:
            raise UsageError(f"{source}: [tool.flakehunt] has unknown option {key!r}")
    for name in commands:
        section = table.get(name)
        for key, value in (section.items() if isinstance(section, dict) else ()):
            if not put(name, key, value):
                raise UsageError(f"{source}: [tool.flakehunt.{name}] has unknown option {key!r}"
                                 f" (see `flakehunt {name} --help`)")
    return {name: values for name, values in out.items() if values}
