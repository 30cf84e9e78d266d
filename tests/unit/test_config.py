"""[tool.flakehunt] in pyproject.toml: every option, the command line wins (click default_map)."""

from __future__ import annotations

import textwrap

import pytest
from click.testing import CliRunner

from flakehunt import app
from flakehunt.cli import cli
from flakehunt.config import default_map, find_pyproject
from flakehunt.errors import UsageError
from flakehunt.model import HuntResult


@pytest.fixture
def captured(monkeypatch, tmp_path):
    """Replace the hunt: record its settings, return an empty result."""
    seen = []

    def fake_hunt(settings, progress=None):
        seen.append(settings)
        return HuntResult(str(tmp_path), settings.selection, settings.seed or 0, (), ())

    monkeypatch.setattr(app, "hunt", fake_hunt)
    monkeypatch.chdir(tmp_path)
    return seen


def pyproject(tmp_path, body: str) -> None:
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent(body))


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_pyproject_sets_options_and_the_command_line_wins(tmp_path, captured):
    pyproject(tmp_path, """\
        [project]
        name = "x"

        [tool.flakehunt]
        runs = 7
        seed = 3
        workers = [0, 4]
        profiles = "none"
        no-classify = true
        budget = "2m"
        fail_on = "never"
        history = "h/history.db"
        pytest-args = ["-k", "fast"]

        [tool.flakehunt.run]
        selection = ["tests"]
        """)
    result = invoke("run")
    assert result.exit_code == 0, result.output
    s = captured[-1]
    assert (s.runs, s.seed, s.workers, s.profiles, s.classify) == (7, 3, (0, 4), ("none",), False)
    assert (s.budget, s.selection, s.pytest_args) == (120.0, ("tests",), ("-k", "fast"))
    assert (tmp_path / "h" / "history.db").exists()  # `history` reached run's --history

    result = invoke("run", "other", "--runs", "2", "--workers", "0", "--budget", "30s",
                    "--", "-x")
    assert result.exit_code == 0, result.output
    s = captured[-1]
    assert (s.runs, s.workers, s.budget, s.seed) == (2, (0,), 30.0, 3)
    assert (s.selection, s.pytest_args) == (("other",), ("-x",))


def test_config_values_are_checked_like_command_line_values(tmp_path, captured):
    pyproject(tmp_path, "[tool.flakehunt]\nworkers = [-1]\n")
    result = invoke("run")
    assert result.exit_code == 2 and "give counts >= 0" in result.output
    pyproject(tmp_path, '[tool.flakehunt]\nfail-on = "sometimes"\n')
    assert invoke("run").exit_code == 2
    pyproject(tmp_path, '[tool.flakehunt]\nbudget = "soon"\n')
    assert "not a duration" in invoke("run").output


def test_unknown_keys_are_errors(tmp_path, captured, capsys):
    from helpers import run_main

    pyproject(tmp_path, "[tool.flakehunt]\nrunz = 3\n")
    code, _, err = run_main(["run"], capsys)
    assert code == 2 and "unknown option 'runz'" in err
    pyproject(tmp_path, "[tool.flakehunt.merge]\nruns = 3\n")  # merge has no --runs
    code, _, err = run_main(["run"], capsys)
    assert code == 2 and "[tool.flakehunt.merge] has unknown option 'runs'" in err


def test_top_level_keys_reach_every_command_that_has_the_option():
    commands = {name: cli.commands[name] for name in ("run", "merge", "report", "history")}
    dm = default_map({"fail-on": "new", "html": "r.html", "limit": 5,
                      "merge": {"fail_on": "never"}}, commands, "p")
    assert dm["run"] == {"fail_on": "new", "html_path": "r.html"}
    assert dm["merge"] == {"fail_on": "never", "html_path": "r.html"}
    assert dm["report"] == {"html_path": "r.html"} and dm["history"] == {"limit": 5}
    with pytest.raises(UsageError):
        default_map({"report": {"fail-on": "new"}}, commands, "p")


def test_explicit_config_file_and_discovery(tmp_path, captured):
    (tmp_path / "sub").mkdir()
    pyproject(tmp_path, "[tool.flakehunt]\nruns = 9\n")
    assert find_pyproject(tmp_path / "sub") == tmp_path / "pyproject.toml"
    (tmp_path / "sub" / ".git").mkdir()  # a repository's root bounds the search
    assert find_pyproject(tmp_path / "sub") is None
    other = tmp_path / "ci.toml"
    other.write_text("[tool.flakehunt]\nruns = 4\n")
    assert invoke("--config", str(other), "run").exit_code == 0
    assert captured[-1].runs == 4
    assert invoke("run").exit_code == 0 and captured[-1].runs == 9
