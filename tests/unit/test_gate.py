"""The CI gate: --fail-on flaky|new|never and the known-flakes (quarantine) file."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest
import samples

from flakehunt.errors import UsageError
from flakehunt.gate import KnownFlake, evaluate, find_known, load_known, wilson_low
from flakehunt.report.json import gate_dict

TODAY = dt.date(2025, 6, 1)


def known(path, text: str) -> dict[str, KnownFlake]:
    path.write_text(textwrap.dedent(text))
    return load_known(path)


def quarantine(nodeid: str, expires: str = "2025-12-31", extra: str = "") -> str:
    return (f'[[flake]]\ntest = "{nodeid}"\nowner = "@alice"\nreason = "issue #1"\n'
            f"expires = {expires}\n{extra}\n")


def test_fail_on_flaky_fails_on_every_flaky_test():
    gate = evaluate(samples.result(), "flaky", {}, TODAY)
    assert gate.failed and set(gate.blocking) == {samples.HOSTILE_ID, samples.RACE}
    assert samples.BROKEN not in gate.blocking  # never passed: the test job's business


def test_fail_on_never_reports_only():
    gate = evaluate(samples.result(), "never", {}, TODAY)
    assert not gate.failed and gate_dict(gate)["failed"] is False


def test_fail_on_new_ignores_quarantined_flakes(tmp_path):
    k = known(tmp_path / "k.toml", quarantine(samples.RACE) + quarantine(samples.OK))
    gate = evaluate(samples.result(), "new", k, TODAY)
    assert gate.blocking == {samples.HOSTILE_ID: "new"}
    assert [q.test for q in gate.quarantined] == [samples.RACE]
    assert gate.stale == (samples.OK,)  # quarantined but stable: fixed?
    d = gate_dict(gate)
    assert d["new"] == [samples.HOSTILE_ID] and d["quarantined"][0]["owner"] == "@alice"
    assert d["quarantined"][0]["expires"] == "2025-12-31"
    assert "1 quarantined" in d["message"] and "were stable" in d["message"]
    every = known(tmp_path / "all.toml", quarantine(samples.RACE)
                  + quarantine(samples.HOSTILE_ID.replace('"', '\\"')))
    assert not evaluate(samples.result(), "new", every, TODAY).failed
    # --fail-on flaky still fails on quarantined ones, and says so
    strict = evaluate(samples.result(), "flaky", every, TODAY)
    assert strict.blocking[samples.RACE] == "quarantined, but --fail-on flaky"


def test_an_expired_quarantine_fails_again(tmp_path):
    k = known(tmp_path / "k.toml", quarantine(samples.RACE, expires="2025-05-31")
              + quarantine(samples.HOSTILE_ID))
    gate = evaluate(samples.result(), "new", k, TODAY)
    assert gate.blocking == {samples.RACE: "quarantine expired 2025-05-31"}
    assert not evaluate(samples.result(), "new", k, dt.date(2025, 5, 31)).failed


def test_worse_than_the_quarantined_rate_fails(tmp_path):
    # 2/4 failed: the 95% interval starts at 15%, so a ceiling of 10% is exceeded, 20% is not
    assert 0.10 < wilson_low(2, 4) < 0.20
    for ceiling, fails in ((0.1, True), (0.2, False)):
        k = known(tmp_path / "k.toml", quarantine(samples.HOSTILE_ID, extra=(
            f"max_failure_rate = {ceiling}")) + quarantine(samples.RACE))
        gate = evaluate(samples.result(), "new", k, TODAY)
        assert gate.failed is fails
        if fails:
            assert gate.blocking[samples.HOSTILE_ID].startswith("worse: failed 2/4")


@pytest.mark.parametrize("text, why", [
    ('[[flake]]\ntest = "t"\nowner = "o"\nexpires = 2025-01-01\n', "lacks reason"),
    ('[[flake]]\ntest = "t"\nowner = "o"\nreason = "r"\nexpires = "soon"\n', "not a date"),
    ('[[flake]]\ntest = "t"\nowner = "o"\nreason = "r"\nexpires = 2025-01-01\nfoo = 1\n',
     "unknown key"),
    ('[[flake]]\ntest = "t"\nowner = "o"\nreason = "r"\nexpires = 2025-01-01\nmax_failure_rate = 2',
     "from 0 to 1"),
    ('tests = []\n', "unknown key"),
    ("[[flake]\n", "not valid TOML"),
])
def test_a_bad_known_flakes_file_is_a_usage_error(tmp_path, text, why):
    path = tmp_path / "k.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=why):
        load_known(path)


def test_known_flakes_file_is_found_or_required(tmp_path):
    assert find_known(None, tmp_path) == {}
    (tmp_path / "known-flakes.toml").write_text(quarantine("t.py::x", expires='"2025-01-02"'))
    assert find_known(None, tmp_path)["t.py::x"].expires == dt.date(2025, 1, 2)
    with pytest.raises(UsageError, match="not found"):
        find_known(str(tmp_path / "nope.toml"), tmp_path)
    with pytest.raises(UsageError, match="--fail-on"):
        evaluate(samples.result(), "sometimes", {}, TODAY)
