"""`make verify`: every file of the cached results checked against its manifest's sha256.

The pipeline itself only compares sizes (a stat per file keeps an up-to-date run fast); this
reads every byte, so it also finds a file altered at the same size. FIX=1 moves the damaged
results aside (`<Task>/.damaged-<hash>-<time>`, listed and deleted by `make gc`), so that the
next run builds them again.

With the cache on S3 both copies are checked: the local mirror as a local cache, and the results
on S3, first each object's presence and size (from one listing), then its bytes (streamed, not
stored). FIX=1 deletes a damaged result's manifest on S3, so that it is no longer done, and moves
the mirror's copy aside; the next run builds it again and publishes it under a new run prefix.
The old files are then a finished upload's leftovers, which that publish (or `make gc`) deletes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config import cache_dir
from ..storage.cache import MANIFEST, CachedTask, file_sha256, set_aside, shared, size_problem
from .dag import upstream_first
from .gc import STUDIES, cache_folders
from .remote import Result, results


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


def remote_damage(store: Any, result: Result) -> str | None:
    """What is wrong with a done result on S3 (a file missing or of another size than its
    manifest gives, then a checksum), or None."""
    try:
        manifest = store.manifest(result.family, result.hash)
        files = {name: (int(entry["bytes"]), entry.get("sha256")) for name, entry in manifest["files"].items()}
        run = manifest["objects"]
    except (ValueError, TypeError, KeyError, AttributeError):
        return f"{MANIFEST} is not a readable manifest"
    sizes = {item.name: item.size for item in result.runs.get(run, [])}
    for name, (size, _) in files.items():
        if name not in sizes:
            return f"{run}/{name} is missing"
        if sizes[name] != size:
            return f"{run}/{name} has {sizes[name]} bytes, its manifest says {size}"
    for name, (_, sha256) in files.items():
        if store.sha256(result.family, result.hash, run, name) != sha256:
            return f"{run}/{name} does not match its manifest's sha256"
    return None


def verify_s3(store: Any, roots: list, everything: bool, fix: bool) -> tuple[list[str], int]:
    """(damage lines, how many done results on S3 were checked)."""
    done = {key: result for key, result in results(store).items() if result.manifest is not None}
    if not everything:
        tasks = [task for root in roots for task in upstream_first(root) if isinstance(task, CachedTask)]
        wanted = {(task.task_family, task.task_hash()) for task in tasks}
        done = {key: result for key, result in done.items() if key in wanted}
    lines = []
    for key, result in sorted(done.items()):
        problem = remote_damage(store, result)
        if problem is None:
            continue
        line = f"damaged  {store.where(*key)}: {problem}"
        if fix:
            store.remove([result.manifest])  # no longer done: the next run builds it again
            mirror = cache_dir() / result.family / result.hash
            aside = set_aside(mirror, problem, quiet=True) if mirror.is_dir() else None
            line += " -> its manifest deleted"
            line += f", the mirror's copy moved to {aside.relative_to(cache_dir())}" if aside else ""
        lines.append(line)
    return lines, len(done)


def verify(roots: list, everything: bool, fix: bool) -> tuple[list[str], int]:
    """(report lines, exit code): 1 when any result is damaged, moved aside or not."""
    folders = [f for f in cache_folders() if f.parent.name != STUDIES] if everything else used_folders(roots)
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
    store = shared()
    if store is not None:
        remote, checked = verify_s3(store, roots, everything, fix)
        lines += remote
        summary = f"{len(folders)} result(s) in the mirror and {checked} on S3 {which} checked, {len(lines)} damaged"
    if not lines:
        return [f"{summary}: every file matches its manifest."], 0
    advice = "the next `make all` builds them again" if fix else "`make verify FIX=1` moves them aside, then `make all`"
    return [*lines, f"{summary}; {advice}."], 1
