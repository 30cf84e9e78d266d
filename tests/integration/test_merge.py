"""--shard i/n and `flakehunt merge`: the same verdicts as one hunt of the same runs;
--budget: a hunt cut short says what it covered."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import samples
from helpers import make_suite, run_main

from flakehunt import verdicts
from flakehunt.errors import UsageError
from flakehunt.merge import merge, parse_shard, shard_specs
from flakehunt.model import Culprit, HuntResult, RunSpec, Verdict


def test_shards_partition_the_plan_and_keep_plan_indexes():
    specs = [RunSpec(index=i) for i in range(10)]
    shards = [shard_specs(specs, (i, 3)) for i in (1, 2, 3)]
    assert [[s.plan_index for s in shard] for shard in shards] == [
        [0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    assert sorted(s.plan_index for shard in shards for s in shard) == list(range(10))
    assert [s.plan_index for s in shard_specs(specs, None)] == list(range(10))


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0", "-1/2"])
def test_bad_shard_is_a_usage_error(text):
    with pytest.raises(UsageError, match="--shard"):
        parse_shard(text)
    assert parse_shard("2/4") == (2, 4)


def shard_of(whole: HuntResult, index: int, count: int) -> HuntResult:
    """What a shard hunt of the same plan would have saved."""
    runs = [replace(r, spec=replace(r.spec, index=k)) for k, r in enumerate(
        r for r in whole.runs if r.spec.plan_index % count == index - 1)]
    findings = verdicts.findings(runs, samples.NODEIDS)
    return replace(whole, runs=tuple(runs), findings=tuple(findings),
                   settings={**whole.settings, "shard": f"{index}/{count}"})


def test_merged_shards_give_the_whole_hunts_verdicts():
    whole = samples.result(runs=4)
    one, two = shard_of(whole, 1, 2), shard_of(whole, 2, 2)
    # shard 1 (plan runs 0, 2) saw the race both pass and fail, and classified it
    one = replace(one, findings=tuple(
        replace(f, category="race", suspected_fixture="websocket", evidence=("timing",),
                culprit=Culprit("port", "8765", None, "bound by both workers", False),
                followups={"alone": 2, "repro": 3})
        if f.nodeid == samples.RACE else f for f in one.findings))
    merged = merge([two, one], ["two.json", "one.json"])  # any order
    expected = verdicts.findings(whole.runs, samples.NODEIDS)
    assert [(f.nodeid, f.verdict, f.passed, f.failed, f.errored, f.skipped, f.messages)
            for f in merged.findings] == [
        (f.nodeid, f.verdict, f.passed, f.failed, f.errored, f.skipped, f.messages)
        for f in expected]
    assert [f.breakdown for f in merged.findings] == [f.breakdown for f in expected]
    assert [r.spec.index for r in merged.runs] == list(range(4))
    assert [r.spec.order for r in merged.runs] == [r.spec.order for r in whole.runs]
    by = {f.nodeid: f for f in merged.findings}
    race = by[samples.RACE]
    assert (race.category, race.suspected_fixture) == ("race", "websocket")
    assert race.evidence[0] == "classified on shard 1/2, where it failed 1/2 runs"
    # what the shard found out comes along: its culprit, the follow-ups it made
    assert race.culprit is not None and race.culprit.target == "8765"
    assert race.followups == {"alone": 2, "repro": 3}
    # the hostile test failed only in shard 2's runs (always) and passed in shard 1's:
    # flaky only across shards, so nobody classified it
    assert {g.nodeid: g.verdict for g in two.findings}[samples.HOSTILE_ID] is Verdict.FAILING
    evil = by[samples.HOSTILE_ID]
    assert evil.verdict is Verdict.FLAKY and evil.category == "unknown"
    assert "flaky only across shards" in evil.evidence[0]
    assert merged.settings["shards"] == ["2/2", "1/2"] and "shard" not in merged.settings


def test_merge_refuses_what_is_not_one_hunt():
    whole = samples.result(runs=4)
    one, two = shard_of(whole, 1, 2), shard_of(whole, 2, 2)
    with pytest.raises(UsageError, match="different seed"):
        merge([one, replace(two, seed=8)])
    with pytest.raises(UsageError, match="different runs"):
        merge([one, replace(two, settings={**two.settings, "runs": 5})])
    with pytest.raises(UsageError, match="given twice"):
        merge([one, one])
    with pytest.raises(UsageError, match="not a shard"):
        merge([one, whole])
    with pytest.raises(UsageError, match="split the hunt differently"):
        merge([one, replace(two, settings={**two.settings, "shard": "2/3"})])
    with pytest.raises(UsageError, match="no per-run results"):
        merge([one, replace(two, runs=tuple(replace(r, results=()) for r in two.runs))])
    partial = merge([one])
    assert any("merged 1 of 2 shards; missing: 2/2" in w for w in partial.warnings)


# -- real hunts ---------------------------------------------------------------------------
SUITE = """
import random

POLLUTED = []


def test_victim():
    assert POLLUTED == [], "polluted"


def test_polluter():
    POLLUTED.append(1)


def test_random():
    # the random module is seeded per test from the run's seed: the same plan run,
    # the same draw, on whichever machine runs it
    assert random.random() < 0.5, "unlucky draw"


def test_stable():
    pass
"""


def hunt_args(tmp_path, name: str, *extra: str) -> list[str]:
    return ["run", ".", "--runs", "6", "--seed", "5", "--workers", "0", "--profiles", "none",
            "--no-classify", "--no-progress", "--no-history", "--json",
            str(tmp_path / name), *extra]


def comparable(data: dict) -> list[tuple]:
    return [(t["nodeid"], t["verdict"], t["runs"], t["passed"], t["failed"], t["errored"],
             t["skipped"], t["breakdown"], t["messages"]) for t in data["tests"]]


def test_shard_and_merge_equal_the_unsharded_hunt(pytester, monkeypatch, capsys, tmp_path):
    make_suite(pytester, test_shard_sample=SUITE)
    monkeypatch.chdir(pytester.path)
    code, _, err = run_main(hunt_args(tmp_path, "whole.json"), capsys)
    assert code == 1, err
    for i in (1, 2, 3):
        code, _, err = run_main(hunt_args(tmp_path, f"shard{i}.json", "--shard", f"{i}/3"),
                                capsys)
        assert code in (0, 1), err
    code, out, err = run_main(["merge", *(str(tmp_path / f"shard{i}.json") for i in (3, 1, 2)),
                               "--json", str(tmp_path / "merged.json"), "--no-history"], capsys)
    whole = json.loads((tmp_path / "whole.json").read_text())
    merged = json.loads((tmp_path / "merged.json").read_text())
    assert code == 1, err
    assert comparable(merged) == comparable(whole)
    verdict = {t["nodeid"].split("::")[1]: t["verdict"] for t in whole["tests"]}
    assert verdict["test_victim"] == "flaky" and verdict["test_stable"] == "stable"
    assert [(r["index"], r["order"], r["random_seed"]) for r in merged["runs"]] == [
        (r["index"], r["order"], r["random_seed"]) for r in whole["runs"]]
    shard = json.loads((tmp_path / "shard2.json").read_text())
    assert [r["plan_index"] for r in shard["runs"]] == [1, 4]
    assert shard["settings"]["shard"] == "2/3" and shard["settings"]["planned_runs"] == 2
    assert "6 runs" in out


def test_budget_stops_starting_runs_and_says_so(pytester, monkeypatch, capsys, tmp_path):
    make_suite(pytester, test_budget_sample=SUITE)
    monkeypatch.chdir(pytester.path)
    code, out, err = run_main(hunt_args(tmp_path, "cut.json", "--budget", "0.001",
                                        "--jobs", "1"), capsys)
    data = json.loads((tmp_path / "cut.json").read_text())
    assert code in (0, 1), err
    assert len(data["runs"]) == 1  # one slot: the first run, then the budget was spent
    assert data["settings"]["budget"] == 0.001
    assert data["settings"]["planned_runs"] == 6
    assert data["settings"]["budget_unstarted_runs"] == 5
    assert any("1 of 6 planned sweep runs done" in w for w in data["warnings"])
    assert "in 1 runs" in out
