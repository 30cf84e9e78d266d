"""Root causes and their patches, without a process: clusters, patch text, the verdict
on a patch's verification runs, and which patches `flakehunt fix` uses."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import result

from flakehunt import clusters, patch
from flakehunt.fixing import judge
from flakehunt.model import (
    Category,
    Cluster,
    Culprit,
    Finding,
    Fix,
    Purpose,
    RunResult,
    RunSpec,
    RunStatus,
    Verdict,
)
from flakehunt.patchdir import chosen

T = "tests/api/test_ws.py::"
HOLDER = Culprit("loop-holder", "Manager._loop", "manager", "holds loop#1")
QUEUES = Culprit("len", "app.manager.mgr._queues", "manager", "0 entries -> 1 entry")


def flaky(name: str, category: Category, culprit: Culprit | None = None,
          polluter: tuple[str, ...] = (), bad: int = 10) -> Finding:
    return Finding(T + name, Verdict.FLAKY, 50, 50 - bad, bad, 0, 0, category=category,
                   culprit=culprit, polluter=polluter, suspected_fixture="manager")


def test_same_culprit_one_cluster_worst_first():
    found = [flaky("test_leak", Category.STATE_LEAK, QUEUES, (T + "test_p",)),
             flaky("test_a", Category.LOOP_CLOSED, HOLDER, bad=30),
             flaky("test_b", Category.LOOP_CLOSED, HOLDER, bad=20),
             flaky("test_race", Category.RACE),
             Finding(T + "test_ok", Verdict.STABLE, 50, 50, 0, 0, 0)]
    made = clusters.group(found)
    assert [c.tests for c in made] == [(T + "test_a", T + "test_b"), (T + "test_leak",),
                                       (T + "test_race",)]
    assert made[0].cause == ("loop-closed: Manager._loop keeps an event loop from an earlier "
                             "test (fixture `manager`)")
    assert made[0].slug == "loop-closed-manager-loop"
    assert made[1].polluter == (T + "test_p",)


def test_same_polluter_without_culprit_one_cluster_races_never_merged():
    found = [flaky("test_x", Category.STATE_LEAK, None, (T + "test_p",)),
             flaky("test_y", Category.STATE_LEAK, None, (T + "test_p",)),
             flaky("test_r1", Category.RACE), flaky("test_r2", Category.RACE)]
    assert [len(c.tests) for c in clusters.group(found)] == [2, 1, 1]


def files(**texts: str):
    return lambda rel: texts.get(rel.replace("/", "__").replace(".", "_"))


def test_state_leak_patch_restores_contents_in_place_in_nearest_conftest():
    [c] = clusters.group([flaky("test_leak", Category.STATE_LEAK, QUEUES, ("tests/test_p.py::t",))])
    read = files(tests__conftest_py="import pytest\n\nX = 1\n", app__manager_py="")
    made = patch.make(c, read)
    assert isinstance(made, patch.Patch) and made.path == "tests/conftest.py"
    assert made.diff.startswith("diff --git a/tests/conftest.py b/tests/conftest.py\n")
    assert 'holder = importlib.import_module("app.manager").mgr' in made.new
    assert "saved = copy.deepcopy(original)" in made.new
    assert "original.clear()" in made.new and "import pytest  #" not in made.new
    compile(made.new, "conftest.py", "exec")


def test_loop_holder_patch_reaches_holder_through_fixture():
    [c] = clusters.group([flaky("test_a", Category.LOOP_CLOSED, HOLDER)])
    made = patch.make(c, files())
    assert isinstance(made, patch.Patch) and made.old is None
    assert made.diff.startswith("diff --git a/tests/api/conftest.py b/tests/api/conftest.py\n"
                                "new file mode 100644\n--- /dev/null\n")
    assert 'holder = request.getfixturevalue("manager")' in made.new
    compile(made.new, "conftest.py", "exec")


@pytest.mark.parametrize("finding, why", [
    (flaky("t", Category.RACE), "a timing race is patched only where"),
    (flaky("t", Category.STATE_LEAK, None, ("p",)), "names no state item"),
    (flaky("t", Category.STATE_LEAK, Culprit("len", "site.pkg.X", None)), "not a module global"),
    (flaky("t", Category.LOOP_CLOSED, Culprit("loop-holder", "M._loop", None)), "no fixture"),
])
def test_no_patch_says_why(finding, why):
    [c] = clusters.group([finding])
    made = patch.make(c, files())
    assert isinstance(made, str) and made.startswith("no patch: ") and why in made


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_patch_applies_with_git_and_chains(tmp_path: Path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "manager.py").write_text("")
    (tmp_path / "tests" / "conftest.py").write_text("X = 1")  # no newline at the end
    found = [flaky("test_a", Category.LOOP_CLOSED, HOLDER),
             flaky("test_leak", Category.STATE_LEAK, QUEUES)]
    overlay: dict[str, str] = {}

    def read(rel: str) -> str | None:
        p = tmp_path / rel
        return overlay.get(rel) or (p.read_text() if p.is_file() else None)

    diffs = []
    for c in clusters.group(found):
        made = patch.make(c, read)
        assert isinstance(made, patch.Patch)
        overlay[made.path] = made.new
        diffs.append(made.diff)
    proc = subprocess.run(["git", "apply", "-"], cwd=tmp_path, input="".join(diffs),
                          text=True, capture_output=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "tests" / "conftest.py").read_text() == overlay["tests/conftest.py"]


def run(tests: tuple[str, ...], outcomes: list[tuple[str, str]],
        status: RunStatus = RunStatus.OK, order: str = "declared") -> RunResult:
    spec = RunSpec(index=0, tests=tests, order=order, purpose=Purpose.REPRO)
    return RunResult(spec, status, 0, 1.0, tuple(result(n, o) for n, o in outcomes), "")


def test_judge_verified_only_when_nothing_fails():
    c = Cluster(Category.STATE_LEAK, "cause", ("v",), polluter=("p",))
    findings = {"v": Finding("v", Verdict.FLAKY, 9, 5, 4, 0, 0),
                "w": Finding("w", Verdict.FLAKY, 9, 5, 4, 0, 0),
                "s": Finding("s", Verdict.STABLE, 9, 9, 0, 0, 0)}
    trials = [run(("p", "v"), [("p", "passed"), ("v", "passed")])] * 3
    shuffled = run(None, [("s", "passed"), ("v", "passed"), ("w", "failed")], order="hash:1")
    fix = judge(c, findings, trials, shuffled, 3)
    assert fix.status == "verified" and fix.evidence.startswith(
        "passed: 3 execution(s) of the failing test(s) in 3 reproducer run(s)")
    still = [*trials[:2], run(("p", "v"), [("p", "passed"), ("v", "failed")])]
    assert "v failed 1/3 reproducer" in judge(c, findings, still, shuffled, 3).evidence
    broke = run(None, [("s", "failed"), ("v", "passed")], order="hash:1")
    fix = judge(c, findings, trials, broke, 3)
    assert fix.status == "proposed" and "whole selection failed: s" in fix.evidence
    unrun = [run(("p", "v"), [], RunStatus.CRASHED)] * 3
    assert judge(c, findings, unrun, shuffled, 3).status == "proposed"


def test_fix_uses_verified_patches_unless_forced():
    ok = Cluster(Category.STATE_LEAK, "a", ("x",), fix=Fix("verified", "", "01-a.patch", "d1"))
    maybe = Cluster(Category.LOOP_CLOSED, "b", ("y",), fix=Fix("proposed", "", "02-b.patch", "d2"))
    none = Cluster(Category.RACE, "c", ("z",), fix=Fix("none", "no patch: ..."))
    use, skipped = chosen((ok, maybe, none), force=False)
    assert use == [ok] and skipped == [
        "skipped 02-b.patch: proposed, not verified (--force applies it anyway)"]
    assert chosen((ok, maybe, none), force=True)[0] == [ok, maybe]


def test_reports_lead_with_root_causes_and_json_round_trips_them():
    from flakehunt.model import HuntResult
    from flakehunt.report.html import HtmlReporter
    from flakehunt.report.json import JsonReporter, to_dict
    from flakehunt.report.load import from_dict
    from flakehunt.report.markdown import MarkdownReporter

    found = (flaky("test_a", Category.LOOP_CLOSED, HOLDER),
             flaky("test_b<script>", Category.LOOP_CLOSED, HOLDER))
    [c] = clusters.group(found)
    c = Cluster(c.category, c.cause, c.tests, c.culprit, c.polluter, c.slug,
                Fix("verified", "passed: ...", "01-x.patch", "diff --git a/x b/x\n"))
    res = HuntResult("/suite", (), 1, (), found, clusters=(c,))
    md = MarkdownReporter().render(res)
    assert md.index("root causes") < md.index("| test |")
    page = HtmlReporter().render(res)
    assert "<h2>root causes: 1 (of 2 flaky test(s))</h2><ol><li>loop-closed" in page
    assert "<script>" not in page
    data = to_dict(res)
    assert data["clusters"][0]["fix"] == {"patch": "01-x.patch", "status": "verified",
                                          "evidence": "passed: ...",
                                          "diff": "diff --git a/x b/x\n"}
    assert data["tests"][0]["fix"]["status"] == "none"  # this test's own fix: not attempted
    again = from_dict(data)
    assert again.clusters == (c,) and JsonReporter().render(again) == JsonReporter().render(res)
