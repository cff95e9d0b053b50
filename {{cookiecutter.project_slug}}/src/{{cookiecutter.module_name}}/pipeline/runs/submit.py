"""`make submit` and `make lb` without SCORE: a run's submission to Kaggle, and Kaggle's public
scores back into the run records.

The description Kaggle shows for a submission carries the run id, the CV score and the commit,
so the submissions page alone says which code made a score; Kaggle's ref for the submission is
kept in the record, so `make lb` puts each score into the record of the run that made it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..config import PROJECT_ROOT
from ..errors import ConfigError, DataError
from ..services import kaggle_api
from ..storage.cache import file_sha256
from .record import all_records, now_utc, read_record, save_record

RUN_ID = re.compile(r"\b\d{8}-\d{6}-[0-9a-f]{8}\b")


def chosen(run: str) -> dict[str, Any]:
    """The record of RUN, or the newest one."""
    if run:
        return read_record(run)
    records = all_records()
    if not records:
        raise ConfigError("no run records in runs/ yet: run `make all` first, then `make submit`")
    return records[0]


def checked_file(record: dict[str, Any]) -> Path:
    """The run's submission file, refused when it is missing or is not the file the run wrote."""
    run, made = record["run_id"], record.get("submission")
    if not made:
        raise DataError(f"run {run} has no submission file yet; `make all` writes it, then `make submit`")
    path = PROJECT_ROOT / made["path"]
    if not path.is_file():
        raise DataError(
            f"{made['path']}: missing, so run {run} cannot be submitted; `make rerun RUN={run}` re-creates it"
        )
    if file_sha256(path) != made["sha256"]:
        raise DataError(
            f"{made['path']}: its sha256 differs from the one in run {run}'s record (the file was changed "
            "after the run); not submitted"
        )
    return path


def description(record: dict[str, Any], message: str = "") -> str:
    """What Kaggle shows beside the score: run id, metric and CV score, short commit, the user's text."""
    cv, git = record["cv"], record["git"]
    commit = (git.get("commit") or "no-commit")[:8] + ("+dirty" if git.get("dirty") else "")
    text = f"run {record['run_id']} | CV {cv['metric']} {cv['score']:.5f} | commit {commit}"
    return f"{text} | {message.strip()}" if message.strip() else text


def submit(run: str, message: str, force: bool) -> list[str]:
    """Upload a run's submission file to the competition and keep Kaggle's ref in its record."""
    record = chosen(run)
    run = record["run_id"]
    slug = kaggle_api.competition()
    path = checked_file(record)
    earlier = record.get("kaggle") or []
    done = [entry for entry in earlier if entry.get("competition") == slug]
    if done and not force:
        raise ConfigError(
            f"run {run} was already submitted to {slug} (ref {done[-1]['ref']}, {done[-1]['submitted_utc']}); "
            f"`make submit RUN={run} FORCE=1` submits it again"
        )
    text = description(record, message)
    ref = kaggle_api.submit(kaggle_api.client(slug), slug, path, text)
    entry = {"competition": slug, "ref": ref, "submitted_utc": now_utc(), "description": text, "status": "pending"}
    record["kaggle"] = [*earlier, entry]
    save_record(record)
    return [
        f"{run}: submitted {record['submission']['path']} to {slug} (ref {ref})",
        f"description: {text}",
        "`make lb` reads its public score once Kaggle has scored it.",
    ]


def _score(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _update(record: dict[str, Any], slug: str, found: list[dict[str, Any]]) -> bool:
    """Bring a record's Kaggle submissions up to date with `found`; whether anything changed.

    A submission is the record's when its ref is in the record, or (made by hand) when its
    description holds the run id; its latest public score becomes the record's LB score.
    """
    before = repr((record.get("kaggle"), record.get("lb")))
    entries = [dict(entry) for entry in record.get("kaggle") or []]
    refs = {entry["ref"] for entry in entries if entry.get("competition") == slug}
    for item in reversed(found):  # oldest first, as make submit appends them
        if item["ref"] not in refs and record["run_id"] in RUN_ID.findall(item["description"]):
            entries.append({"competition": slug, "ref": item["ref"], "submitted_utc": item["date"]})
            refs.add(item["ref"])
    by_ref = {item["ref"]: item for item in found}
    scored = None
    for entry in entries:
        item = by_ref.get(entry["ref"]) if entry.get("competition") == slug else None
        if item is None:
            continue
        entry["status"] = item["status"]
        entry["public_score"] = _score(item["public_score"])
        entry["description"] = item["description"]
        if entry["public_score"] is not None and item["status"] == "complete":
            scored = entry
    if entries:
        record["kaggle"] = entries
    if scored is not None:
        old = record.get("lb") or {}
        if old.get("ref") != scored["ref"] or old.get("score") != scored["public_score"]:
            record["lb"] = {"score": scored["public_score"], "recorded_utc": now_utc(), "ref": scored["ref"]}
    return repr((record.get("kaggle"), record.get("lb"))) != before


def read_scores() -> list[str]:
    """Kaggle's public scores of this competition's submissions into the run records they belong to."""
    slug = kaggle_api.competition()
    records = all_records()  # an unreadable record stops this before any request
    found = kaggle_api.submissions(kaggle_api.client(slug), slug)
    changed = [record for record in records if _update(record, slug, found)]
    for record in changed:
        save_record(record)
    lines = []
    for record in records:
        state = lb_state(record)
        if state:
            lines.append(f"{record['run_id']}: {state} (CV {record['cv']['score']:.5f})")
    matched = {entry["ref"] for record in records for entry in record.get("kaggle") or []}
    lines.append(
        f"{len(found)} submissions to {slug} on Kaggle, {len(matched & {item['ref'] for item in found})} "
        f"of them made by runs here; {len(changed)} run records updated"
    )
    return lines


def lb_state(record: dict[str, Any]) -> str:
    """The LB column of `make runs`: the score, else `pending` or `error` for a submission Kaggle
    has not scored, else nothing."""
    lb = record.get("lb")
    if lb:
        return f"{lb['score']:.5f}"
    entries = record.get("kaggle") or []
    if any(entry.get("status") == "pending" for entry in entries):
        return "pending"
    if entries and entries[-1].get("status") == "error":
        return "error"
    return ""
