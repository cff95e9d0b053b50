"""Push: the newest submission and its run records to s3://bucket/prefix/submissions/.

Work done on a spot machine survives it: the file that was (or will be) submitted, plus the
record of the code and parameters that made it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import luigi

from ..config import runs_dir, shown, submissions_dir
from ..errors import DataError
from ..services import s3 as remote
from .record import all_records, patch_path, record_path


def newest_submission() -> Path:
    folder = submissions_dir()
    files = [p for p in folder.glob("*.csv*") if p.is_file()] if folder.is_dir() else []
    if not files:
        raise DataError(f"{shown(folder)}: no submission file to push; run `make all` first")
    return max(files, key=lambda p: p.stat().st_mtime_ns)


def records_of(submission: Path) -> list[Path]:
    """The run records (runs/<run id>.json) whose submission is this file, oldest first, each with
    its .patch when there is one; an unreadable record is a one-line DataError, as in `make runs`."""
    found = []
    for record in reversed(all_records()):
        made = record.get("submission")
        if isinstance(made, dict) and Path(str(made.get("path"))).name == submission.name:
            run = record["run_id"]
            found += [path for path in (record_path(run), patch_path(run)) if path.is_file()]
    return found


class Push(luigi.Task):
    """Uploads the newest file in submissions/ and its run records, every time it is run."""

    def complete(self) -> bool:
        return getattr(self, "_pushed", False)

    def run(self) -> None:
        bucket = remote.bucket()
        submission = newest_submission()
        records = records_of(submission)
        client = remote.client()
        for path in [submission, *records]:
            key = remote.key_of(f"submissions/{path.name}")
            with remote.errors_as_one_line(client, remote.url(key)):
                client.upload_file(str(path), bucket, key)
            print(f"pushed {shown(path)} to {remote.url(key)}", flush=True)
        if not records:
            print(f"no run record in {shown(runs_dir())} names {submission.name}: pushed the submission alone")
        self._pushed = True

    def on_success(self) -> Any:
        self._pushed = False  # Luigi reuses task instances: the next build pushes again
        return super().on_success()
