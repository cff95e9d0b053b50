"""The code a run used: the git commit and, when the tree is dirty, the diff that recreates it.

The diff is taken against HEAD through a throw-away copy of git's index, so it holds staged and
unstaged edits and new (untracked, not ignored) files alike, and the user's own index is never
touched. `git checkout <commit> && git apply <patch>` recreates the tree the run used.
Outputs (run records, submissions, reports) are left out: they are results, not code.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

NOT_A_REPOSITORY = "not a git repository: run `git init` and commit to tie runs to code"


def _git(cwd: Path, *args: str, env: dict[str, str] | None = None, raw: bool = False) -> str | None:
    """git's stdout (text; without its final newline unless raw), or None when git fails or is missing."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, env={**os.environ, **(env or {})}, check=False
        )
    except OSError:
        return None
    if done.returncode != 0:
        return None
    text = done.stdout.decode("utf-8", "surrogateescape")
    return text if raw else text.removesuffix("\n")


def toplevel(project: Path) -> Path | None:
    """The root of the git work tree holding the project, or None outside one."""
    top = _git(project, "rev-parse", "--show-toplevel")
    return Path(top) if top else None


def _pathspec(top: Path, project: Path, outputs: list[Path]) -> list[str]:
    """The project's files, minus the output folders, as git pathspecs relative to the top."""
    spec = [str(project.resolve().relative_to(top.resolve()) or ".")]
    for folder in outputs:
        try:
            spec.append(f":(exclude){folder.resolve().relative_to(top.resolve())}")
        except ValueError:
            continue  # an output folder outside the repository is not in any diff
    return spec


def diff_against_head(top: Path, pathspec: list[str], head: str | None) -> str:
    """The binary diff from HEAD (or the empty tree) to the work tree, new files included."""
    real_index = Path(_git(top, "rev-parse", "--path-format=absolute", "--git-path", "index") or "")
    with tempfile.TemporaryDirectory(prefix="run-index-") as tmp:
        index = Path(tmp) / "index"
        env = {"GIT_INDEX_FILE": str(index)}
        if real_index.is_file():
            shutil.copyfile(real_index, index)  # keeps git's stat cache: unchanged files are not re-read
        _git(top, "add", "--all", "--", *pathspec, env=env)
        base = head or _git(top, "hash-object", "-t", "tree", "/dev/null") or ""
        return _git(top, "diff", "--cached", "--binary", "--full-index", base, "--", *pathspec, env=env, raw=True) or ""


def git_state(project: Path, outputs: list[Path]) -> dict[str, Any]:
    """What the record says about the code: commit, branch, dirty, the patch text (None if clean)."""
    top = toplevel(project)
    if top is None:
        return {"repository": False, "commit": None, "dirty": None, "patch": None, "note": NOT_A_REPOSITORY}
    head = _git(top, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    patch = diff_against_head(top, _pathspec(top, project, outputs), head)
    state: dict[str, Any] = {
        "repository": True,
        "commit": head,
        "branch": _git(top, "rev-parse", "--abbrev-ref", "HEAD") if head else None,
        "dirty": bool(patch),
        "project_dir": str(project.resolve().relative_to(top.resolve())),
        "patch": patch or None,
    }
    if head is None:
        state["note"] = "no commit yet: the patch holds every file of the project"
    return state
