"""`make gc`: cache folders that no run record and no current task refers to.

Old results are kept on purpose (going back to old code finds them), so the cache only grows;
this lists what nothing points to any more and deletes it only when asked (CONFIRM=1). Results
set aside as damaged (`<Task>/.damaged-<hash>-<time>`, by a run or `make verify FIX=1`) are
listed and deleted with them. Tune's studies (`Tune/<model>-<hash>`) are kept while a
`runs/tune-<model>.json` names them.

With the cache on S3, the same rule applies to the results there (a done result nothing names is
deleted manifest first), and to the files of uploads that never finished: run prefixes that no
manifest names, once their newest file is older than STALE_HOURS (a running upload is never that
old). The local mirror is collected like a local cache.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ..config import PROJECT_ROOT, cache_dir, runs_dir
from ..errors import ConfigError
from ..storage.cache import DAMAGED_PREFIX, CachedTask, shared
from .dag import upstream_first
from .record import all_records, folders_named
from .remote import megabytes, named_run, results

STALE_HOURS = 24.0
STUDIES = "Tune"  # Tune's folders hold Optuna journals (training/tune.py), not results with a manifest


def stale_hours(text: str | None) -> float:
    """STALE_HOURS as a number of hours (empty: 24); a ConfigError names a value that is not one."""
    if not text:
        return STALE_HOURS
    try:
        hours = float(text)
    except ValueError:
        hours = -1.0
    if not hours >= 0 or hours == float("inf"):
        raise ConfigError(f"STALE_HOURS={text}: give a number of hours, 0 or more (default {STALE_HOURS:g})")
    return hours


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


def studies() -> set[Path]:
    """Tune's study folders that a runs/tune-<model>.json names (its journal)."""
    named = set()
    for path in runs_dir().glob("tune-*.json"):
        try:
            named.add((PROJECT_ROOT / json.loads(path.read_text())["study"]).parent.resolve())  # journal.log's
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return named


def current_tasks(roots: list) -> list[CachedTask]:
    return [task for root in roots for task in upstream_first(root) if isinstance(task, CachedTask)]


def orphans(roots: list, records: list[dict[str, Any]] | None = None) -> tuple[list[Path], int]:
    """(folders nothing refers to, how many folders the records name). Reading the records
    first means an unreadable record stops gc before it deletes anything."""
    named = folders_named(all_records() if records is None else records)
    current = {task.folder.resolve() for task in current_tasks(roots)}
    keep = named | current | studies()
    unused = [folder for folder in cache_folders() if folder.resolve() not in keep]
    return unused + damaged_folders(), len(named)


class Garbage:
    """One thing gc would delete: a label, its size, and how to delete it."""

    def __init__(self, label: str, size: int, delete: Callable[[], object]) -> None:
        self.label, self.size, self.delete = label, size, delete


def on_s3(store: Any, keep: set[tuple[str, str]], stale_after: timedelta) -> tuple[list[Garbage], int]:
    """(what gc deletes on S3, how many unfinished uploads are kept as too young): done results
    not in keep, whole; run prefixes no manifest names, once their newest file is stale."""
    garbage, young = [], 0
    oldest = datetime.now(timezone.utc) - stale_after
    for result in results(store).values():
        if result.manifest is not None and result.key not in keep:
            objects = result.objects()
            where = store.where(*result.key)
            garbage.append(Garbage(where, sum(o.size for o in objects), lambda o=objects: store.remove(o)))
            continue
        named = named_run(store, result)
        for run, objects in sorted(result.runs.items()):
            if run == named:
                continue
            if max(item.modified for item in objects) > oldest:
                young += 1
                continue
            label = f"{store.where(*result.key, run)}  (an upload that never finished)"
            garbage.append(Garbage(label, sum(o.size for o in objects), lambda o=objects: store.remove(o)))
    return garbage, young


def results_named(records: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(task, hash) of every result the records name."""
    return {(Path(task["folder"]).parent.name, task["hash"]) for record in records for task in record["tasks"].values()}


def collect(roots: list, confirm: bool, stale_hours: float = STALE_HOURS) -> list[str]:
    """The report lines; deletes the listed folders (and objects on S3) when confirm."""
    records = all_records()
    folders, named = orphans(roots, records)
    root = cache_dir()
    garbage = [
        Garbage(str(folder.relative_to(root)), size_of(folder), lambda f=folder: shutil.rmtree(f)) for folder in folders
    ]
    store, young = shared(), 0
    if store is not None:
        keep = results_named(records) | {(task.task_family, task.task_hash()) for task in current_tasks(roots)}
        remote, young = on_s3(store, keep, timedelta(hours=stale_hours))
        garbage += remote
    lines = [f"{megabytes(item.size):>9}  {item.label}" for item in garbage]
    if young:
        lines.append(
            f"Kept {young} unfinished upload(s) on S3 younger than {stale_hours:g} h: they may still be running "
            "(STALE_HOURS=n to change)"
        )
    total = (
        f"{len(garbage)} folder(s), {megabytes(sum(item.size for item in garbage))}, that no run record "
        f"({named} kept) or current task uses or that were set aside as damaged"
        + (" or left by unfinished uploads" if store is not None else "")
    )
    if not garbage:
        where = "cache folder" + (" and result on S3" if store is not None else "")
        return [*lines, f"Nothing to delete: every {where} is named by a run record ({named}) or a current task."]
    if not confirm:
        return [*lines, total, "Nothing deleted: run `make gc CONFIRM=1` to delete them."]
    for item in garbage:
        item.delete()
    return [*lines, f"Deleted {total}."]
