"""`make gc`: cache folders that no run record and no current task refers to.

Old results are kept on purpose (going back to old code finds them), so the cache only grows;
this lists what nothing points to any more and deletes it only when asked (CONFIRM=1). Results
set aside as damaged (`<Task>/.damaged-<hash>-<time>`, by a run or `make verify FIX=1`) are
listed and deleted with them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..cache import DAMAGED_PREFIX, CachedTask
from ..config import cache_dir
from .dag import upstream_first
from .record import all_records, folders_named


def cache_folders() -> list[Path]:
    """Every result folder, data/cache/<Task>/<hash> (temporary and hidden entries left out)."""
    root = cache_dir()
    if not root.is_dir():
        return []
    return sorted(
        folder
        for task in root.iterdir()
        if task.is_dir() and not task.name.startswith(".")
        for folder in task.iterdir()
        if folder.is_dir() and not folder.name.startswith(".")
    )


def damaged_folders() -> list[Path]:
    """Results moved aside as damaged: kept for a look until gc deletes them."""
    root = cache_dir()
    return sorted(path for path in root.glob(f"*/{DAMAGED_PREFIX}*") if path.is_dir()) if root.is_dir() else []


def size_of(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def orphans(roots: list) -> tuple[list[Path], int]:
    """(folders nothing refers to, how many folders the records name). Reading the records
    first means an unreadable record stops gc before it deletes anything."""
    named = folders_named(all_records())
    current = {task.folder.resolve() for root in roots for task in upstream_first(root) if isinstance(task, CachedTask)}
    keep = named | current
    unused = [folder for folder in cache_folders() if folder.resolve() not in keep]
    return unused + damaged_folders(), len(named)


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def collect(roots: list, confirm: bool) -> list[str]:
    """The report lines; deletes the listed folders when confirm."""
    folders, named = orphans(roots)
    sizes = [size_of(folder) for folder in folders]
    root = cache_dir()
    lines = [f"{megabytes(size):>9}  {folder.relative_to(root)}" for folder, size in zip(folders, sizes, strict=True)]
    total = (
        f"{len(folders)} folder(s), {megabytes(sum(sizes))}, that no run record ({named} kept) or current task uses"
        " or that were set aside as damaged"
    )
    if not folders:
        return [f"Nothing to delete: every cache folder is named by a run record ({named}) or a current task."]
    if not confirm:
        return [*lines, total, "Nothing deleted: run `make gc CONFIRM=1` to delete them."]
    for folder in folders:
        shutil.rmtree(folder)
    return [*lines, f"Deleted {total}."]
