"""Run records: runs/<run id>.json (and runs/<run id>.patch when the tree was dirty).

A record is written after a successful `make train` / `make all` whenever the current Train
result has none yet, or its submission is new; it is small, sorted JSON, meant to be committed.
"""

from __future__ import annotations

import json
import math
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import PROJECT_ROOT, reports_dir, runs_dir, shown, submissions_dir
from ..errors import ConfigError, DataError
from ..storage.cache import CachedTask, atomic_file, file_sha256, fingerprint
from . import environment, run_id
from .dag import config_values, name_of, overrides, upstream_first
from .gitinfo import git_state

if TYPE_CHECKING:
    import luigi

PACKAGES = ("luigi", "pandas", "numpy", "pyarrow", "scikit-learn", "boto3", "matplotlib", "kaggle")


def record_path(run: str) -> Path:
    return runs_dir() / f"{run}.json"


def patch_path(run: str) -> Path:
    return runs_dir() / f"{run}.patch"


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --- writing ----------------------------------------------------------------------------------


def ensure_record(args: list[str], result: CachedTask | None = None) -> Path:
    """The record of a Train or Blend result (by default the one Submission uses), written when
    missing or when its submission is new.

    Called by the pipeline's command line after a successful Train, Submission, Models or Blend
    run, inside its parsed command line, so the overrides (SEED=...) are in force. Costs a file
    read when the record is already there.
    """
    from ..training.submission import Submission

    submitted = Submission().predictions()  # Train's, or Blend's (make submission FROM=blend)
    result = submitted if result is None else result
    train_manifest = result.manifest()
    run = run_id(train_manifest)
    submission = Submission().folder
    made = result.task_id == submitted.task_id and Submission().is_done()
    path = record_path(run)
    old = _read(path) if path.is_file() else None
    if old is not None and (not made or _names_submission(old, submission.name)):
        return path
    root = Submission() if result.task_id == submitted.task_id else result
    record, patch = build_record(run, train_manifest, args, Submission() if made else None, root)
    if old and old.get("submission") == record["submission"]:  # its leaderboard score and Kaggle submissions stay
        record.update({key: old[key] for key in ("lb", "kaggle") if old.get(key)})
    write_record(record, patch)
    return path


def _names_submission(record: dict[str, Any], submission_hash: str) -> bool:
    """Whether a record already names the submission file of this Submission result (a record
    written after `make train` holds Submission's hash before that task has run)."""
    return record.get("submission") is not None and record["tasks"].get("Submission", {}).get("hash") == submission_hash


def build_record(
    run: str, train_manifest: dict[str, Any], args: list[str], submission: CachedTask | None, root: luigi.Task
) -> tuple[dict[str, Any], str | None]:
    """The record's content (the tasks: root's and every task it needs), and the patch text when
    the tree is dirty."""
    facts = train_manifest["facts"]
    tasks = upstream_first(root)
    git = git_state(PROJECT_ROOT, [runs_dir(), submissions_dir(), reports_dir()])
    patch = git.pop("patch")
    git["patch"] = shown(patch_path(run)) if patch else None
    values = config_values()
    record = {
        "run_id": run,
        "time_utc": train_manifest["finished_utc"],
        "recorded_utc": now_utc(),
        "git": git,
        "params": {
            "seed": train_manifest["settings"].get("seed"),
            "overrides": overrides(args),
            "config": values,
        },
        "tasks": {
            name_of(task): {"hash": task.task_hash(), "folder": shown(task.folder)}
            for task in tasks
            if isinstance(task, CachedTask)
        },
        "data": {name: fingerprint(path) for task in tasks for name, path in _inputs(task).items()},
        "features": facts["features"],
        "model": facts.get("model"),
        "seeds": facts.get("seeds"),
        "blend": _blend(facts) if "weights" in facts else None,
        "cv": {
            "metric": facts["metric"],
            "score": facts["cv_score"],
            "folds": facts["fold_scores"],
            "greater_is_better": facts["greater_is_better"],
            # several target columns: each one's CV score and fold scores (the score is their mean)
            **({"targets": _targets(facts)} if "target_scores" in facts else {}),
        },
        "packages": {"python": platform.python_version(), **_versions()},
        "environment": environment.current(),
        "command": [Path(sys.executable).name, "-m", __package__.partition(".")[0], *args],
        "submission": None,
        "lb": None,
    }
    if submission is not None:
        copy = submission.path()
        record["submission"] = {"path": shown(copy), "sha256": file_sha256(copy)}
    return record, patch


def _targets(facts: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {"score": score, "folds": facts["target_fold_scores"][name]}
        for name, score in facts["target_scores"].items()
    }


def _blend(facts: dict[str, Any]) -> dict[str, Any]:
    """A blend's method, weights and components: each model's Train hash and run id (its record)."""
    return {
        "method": facts.get("method", "weights"),
        "weights": facts["weights"],
        "components": facts["components"],
        "runs": facts.get("component_runs", {}),
    }


def write_record(record: dict[str, Any], patch: str | None) -> None:
    """The patch first, the record last: a record never names a patch that is not there."""
    run = record["run_id"]
    if patch:
        with atomic_file(patch_path(run)) as tmp:
            tmp.write_text(patch, encoding="utf-8", errors="surrogateescape")
    else:
        patch_path(run).unlink(missing_ok=True)
    _write_json(record_path(run), record)


def save_record(record: dict[str, Any]) -> None:
    """Rewrite a record read with read_record/all_records (atomically)."""
    _write_json(record_path(record["run_id"]), record)


def _write_json(path: Path, record: dict[str, Any]) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def _inputs(task: Any) -> dict[str, Path]:
    return task.inputs() if isinstance(task, CachedTask) else {}


def _versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


# --- reading ----------------------------------------------------------------------------------


def _read(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise DataError(f"{shown(path)}: not a readable run record ({error}); fix or remove it") from None
    if not isinstance(record, dict) or "run_id" not in record or "tasks" not in record:
        raise DataError(f"{shown(path)}: not a run record (no run_id or tasks); fix or remove it")
    return record


def read_record(run: str) -> dict[str, Any]:
    """One record by run id; an unknown id is a ConfigError that lists the latest ids."""
    if not run:
        raise ConfigError("no run given: use RUN=<run id> (see `make runs`)")
    path = record_path(run)
    if "/" in run or not path.is_file():
        latest = ", ".join(r["run_id"] for r in all_records()[:3]) or "none yet"
        raise ConfigError(f"run {run!r}: no record {shown(path)} (latest runs: {latest})")
    return _read(path)


def all_records() -> list[dict[str, Any]]:
    """Every record, newest first (Tune's results, runs/tune-<model>.json, are not records)."""
    paths = [path for path in runs_dir().glob("*.json") if not path.name.startswith("tune-")]
    return sorted((_read(path) for path in paths), key=lambda r: r["run_id"], reverse=True)


def set_lb(run: str, score: str) -> dict[str, Any]:
    """Record a public leaderboard score against a run (rewrites its record atomically)."""
    record = read_record(run)
    try:
        value = float(score)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ConfigError(f"SCORE={score!r}: not a number; use e.g. `make lb RUN={run} SCORE=0.81234`")
    record["lb"] = {"score": value, "recorded_utc": now_utc()}
    _write_json(record_path(run), record)
    return record


def folders_named(records: list[dict[str, Any]]) -> set[Path]:
    """The cache folders the records name, resolved (make gc never deletes these)."""
    return {(PROJECT_ROOT / task["folder"]).resolve() for record in records for task in record["tasks"].values()}
