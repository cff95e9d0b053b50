"""The cache on S3 as `make gc` and `make verify` see it: each result's manifest and run prefixes,
from one listing of the store (shared_cache.S3Results, the only code that talks to S3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..storage.shared_cache import Stored


@dataclass
class Result:
    """What S3 holds of one result: its manifest object (None: not done) and the objects under
    each run prefix that uploaded files for it."""

    family: str
    hash: str
    manifest: Stored | None = None
    runs: dict[str, list[Stored]] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return self.family, self.hash

    def objects(self) -> list[Stored]:
        return [*([self.manifest] if self.manifest else []), *(item for run in self.runs.values() for item in run)]


def results(store: Any) -> dict[tuple[str, str], Result]:
    """Every result on S3, done or not, by (task, hash)."""
    found: dict[tuple[str, str], Result] = {}
    for item in store.stored():
        result = found.setdefault(item.result, Result(item.family, item.hash))
        if item.run:
            result.runs.setdefault(item.run, []).append(item)
        else:
            result.manifest = item
    return found


def named_run(store: Any, result: Result) -> str | None:
    """The run prefix a done result's manifest names (None: not done). A result with one run
    prefix costs no request: that prefix is the manifest's or the result is damaged, which
    `make verify` finds."""
    if result.manifest is None:
        return None
    if len(result.runs) == 1:
        return next(iter(result.runs))
    manifest = store.manifest(result.family, result.hash)
    return manifest.get("objects") if manifest else None


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"
