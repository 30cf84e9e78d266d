"""The patches on disk: ``--patch-dir DIR`` (one ``NN-slug.patch`` per root cause and a
``README.md`` index) and ``flakehunt fix RESULT.json`` (print them, or ``--apply`` them).

``fix`` applies only verified patches unless ``--force``, in their order (each was made
against the tree with the verified ones before it applied), from the suite's root, in one
``git apply`` (checked whole before anything changes).
"""

from __future__ import annotations

from pathlib import Path

from flakehunt.errors import SuiteError, UsageError
from flakehunt.fixing import git_apply
from flakehunt.model import Cluster, HuntResult


def write_dir(result: HuntResult, where: Path) -> list[Path]:
    """Every cluster's patch as ``NN-slug.patch`` and the index; the files written."""
    try:
        where.mkdir(parents=True, exist_ok=True)
        written = []
        for c in result.clusters:
            if c.fix.patch and c.fix.diff:
                path = where / c.fix.patch
                path.write_text(c.fix.diff, encoding="utf-8")
                written.append(path)
        index = where / "README.md"
        index.write_text(index_text(result), encoding="utf-8")
    except OSError as exc:
        raise SuiteError(f"cannot write --patch-dir {where}: {exc.strerror or exc}") from None
    return [*written, index]


def index_text(result: HuntResult) -> str:
    lines = ["# flakehunt: one patch per root cause", "",
             f"Suite: `{result.rootdir}` (seed {result.seed}). Apply from the suite's root, "
             "in order: `git apply NN-name.patch`, or `flakehunt fix RESULT.json --apply`.",
             "`verified`: applied to a scratch copy of the suite, the failing tests' "
             "reproducers passed as often as their failure rate needs (95%) and a shuffled "
             "run of the whole selection newly failed nothing. `proposed`: not shown to work.",
             ""]
    for n, c in enumerate(result.clusters, 1):
        lines.append(f"## {n}. {c.cause}")
        lines.append("")
        lines.append(f"- patch: `{c.fix.patch}` ({c.fix.status})" if c.fix.patch
                     else f"- patch: none ({c.fix.status})")
        lines.append(f"- evidence: {c.fix.evidence}")
        lines += [f"- test: `{t}`" for t in c.tests]
        lines.append("")
    return "\n".join(lines)


def chosen(clusters: tuple[Cluster, ...], force: bool) -> tuple[list[Cluster], list[str]]:
    """The patches ``fix`` uses, in order, and a line per patch it leaves out."""
    use, skipped = [], []
    for c in clusters:
        if not c.fix.diff:
            continue
        if c.fix.status == "verified" or force:
            use.append(c)
        else:
            skipped.append(f"skipped {c.fix.patch}: {c.fix.status}, not verified "
                           "(--force applies it anyway)")
    return use, skipped


def fix(result: HuntResult, apply: bool, force: bool, root: Path | None) -> tuple[str, str]:
    """(what goes to stdout, what goes to stderr): the patches, or where they went."""
    use, skipped = chosen(result.clusters, force)
    notes = list(skipped)
    if not apply:
        if not use:
            notes.append("no verified patch in this result")
        return "".join(c.fix.diff or "" for c in use), "\n".join(notes)
    where = root or Path(result.rootdir)
    if not where.is_dir():
        raise UsageError(f"the suite's root {where} is not a folder (--root DIR)")
    if use:  # one `git apply` of them all: checked whole first, nothing is half applied
        failed = git_apply(where, "".join(c.fix.diff or "" for c in use))
        if failed:
            raise SuiteError(f"the patches do not apply in {where}: {failed}")
        notes += [f"applied {c.fix.patch} ({c.fix.status}) in {where}" for c in use]
    if not use:
        notes.append("no verified patch in this result: nothing applied")
    return "", "\n".join(notes)
