"""How many root causes of corpus hunts got a verified patch, checked independently.

Reads the hunts `score_corpus.py --keep DIR -- --patch-dir patches` kept (one JSON per
suite and seed), and per suite counts the state-leak, loop-closed and race root causes
(clusters) by fix status, then by category. Then, independently of flakehunt's own
verification, it copies the suite afresh, applies its verified patches with `git apply`,
and runs every clustered test's reproducer command from the JSON once: a verified patch
must leave none failing.

    python benchmarks/score_corpus.py --runs 30 --k 1 --keep /tmp/kept \\
        --only leak_module_global loop_cached_client -- --patch-dir patches
    python benchmarks/fix_corpus.py /tmp/kept
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"


def recheck(suite: Path, data: dict) -> tuple[int, int]:
    """(reproducers run, reproducers that failed) with the verified patches applied."""
    verified = [c for c in data["clusters"] if c["fix"]["status"] == "verified"]
    if not verified:
        return 0, 0
    tests = {t["nodeid"]: t for t in data["tests"]}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    ran = failed = 0
    with tempfile.TemporaryDirectory(prefix="fix-corpus-") as tmp:
        work = Path(tmp) / suite.name
        shutil.copytree(suite, work, ignore=shutil.ignore_patterns("__pycache__"))
        diff = "".join(c["fix"]["diff"] for c in verified)
        subprocess.run(["git", "apply", "-"], cwd=work, input=diff, text=True, check=True)
        for c in verified:
            for nodeid in c["tests"]:
                cmd = (tests[nodeid].get("reproduce") or "").split("  # ", 1)[0]
                if not cmd:
                    continue
                if cmd.startswith("cd "):
                    cmd = cmd.split(" && ", 1)[1]
                seed, *argv = shlex.split(cmd)
                run_env = {**env, "PYTHONHASHSEED": seed.split("=", 1)[1]}
                # every `python` of the command (a throttled one has two) is this one
                argv = [sys.executable if a == "python" else a for a in argv]
                proc = subprocess.run([*argv, "-q"], cwd=work,
                                      env=run_env, capture_output=True, text=True)
                ran += 1
                failed += proc.returncode != 0
    return ran, failed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kept", type=Path, help="the folder score_corpus.py --keep wrote")
    args = ap.parse_args(argv)
    rows = [("suite", "root causes", "verified", "proposed", "none", "recheck failed")]
    total: Counter[str] = Counter()
    by_category: dict[str, Counter[str]] = {}
    for path in sorted(args.kept.glob("*.json")):
        data = json.loads(path.read_text())
        suite = CORPUS / path.stem.rsplit("-", 1)[0]
        causes = [c for c in data.get("clusters", [])
                  if c["category"] in ("state-leak", "loop-closed", "race")]
        status = Counter(c["fix"]["status"] for c in causes)
        for c in causes:
            by_category.setdefault(c["category"], Counter())[c["fix"]["status"]] += 1
        ran, failed = recheck(suite, data)
        total.update({"causes": len(causes), **status, "ran": ran, "failed": failed})
        rows.append((path.stem, str(len(causes)), str(status["verified"]),
                     str(status["proposed"]), str(status["none"]), f"{failed}/{ran}"))
    rows.append(("total", str(total["causes"]), str(total["verified"]),
                 str(total["proposed"]), str(total["none"]),
                 f"{total['failed']}/{total['ran']}"))
    for r in rows:
        print(" | ".join(f"{c:<34}" if i == 0 else f"{c:>8}" for i, c in enumerate(r)))
    for category, got in sorted(by_category.items()):
        print(f"{category}: {sum(got.values())} root causes, {got['verified']} verified, "
              f"{got['proposed']} proposed, {got['none']} none")
    for path in sorted(args.kept.glob("*.json")):
        for c in json.loads(path.read_text()).get("clusters", []):
            if c["fix"]["status"] != "verified":
                print(f"{path.stem}: {c['cause']}: {c['fix']['evidence']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
