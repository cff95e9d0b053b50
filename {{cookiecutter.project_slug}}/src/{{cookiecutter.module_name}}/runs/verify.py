"""`make verify`: every file of the cached results checked against its manifest's sha256.

The pipeline itself only compares sizes (a stat per file keeps an up-to-date run fast); this
reads every byte, so it also finds a file altered at the same size. FIX=1 moves the damaged
results aside (`<Task>/.damaged-<hash>-<time>`, listed and deleted by `make gc`), so that the
next run builds them again.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..cache import MANIFEST, CachedTask, file_sha256, set_aside, size_problem
from ..config import cache_dir
from .dag import upstream_first
from .gc import cache_folders


def damage(folder: Path) -> str | None:
    """What is wrong with a result folder (sizes first, then checksums), or None."""
    try:
        problem = size_problem(folder)
    except FileNotFoundError:
        return f"{MANIFEST} is missing"
    if problem is not None:
        return problem
    files = json.loads((folder / MANIFEST).read_bytes())["files"]
    for name, entry in files.items():
        if file_sha256(folder / name) != entry.get("sha256"):
            return f"{name} does not match its manifest's sha256"
    return None


def used_folders(roots: list) -> list[Path]:
    """The result folders of the current pipeline's tasks that exist (folds included)."""
    tasks = [task for root in roots for task in upstream_first(root) if isinstance(task, CachedTask)]
    return [task.folder for task in tasks if task.folder.is_dir()]


def verify(roots: list, everything: bool, fix: bool) -> tuple[list[str], int]:
    """(report lines, exit code): 1 when any result is damaged, moved aside or not."""
    folders = cache_folders() if everything else used_folders(roots)
    root = cache_dir()
    lines = []
    for folder in folders:
        problem = damage(folder)
        if problem is None:
            continue
        line = f"damaged  {folder.relative_to(root)}: {problem}"
        if fix:
            aside = set_aside(folder, problem, quiet=True)
            line += f" -> moved to {aside.relative_to(root)}" if aside else " (already moved by another process)"
        lines.append(line)
    which = "in the cache" if everything else "the current pipeline uses"
    summary = f"{len(folders)} result(s) {which} checked, {len(lines)} damaged"
    if not lines:
        return [f"{summary}: every file matches its manifest."], 0
    advice = "the next `make all` builds them again" if fix else "`make verify FIX=1` moves them aside, then `make all`"
    return [*lines, f"{summary}; {advice}."], 1
