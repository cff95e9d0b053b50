"""Stage 4, the runs: a record of every trained model, tying its CV score and submission to the
code (commit and uncommitted diff), parameters and task hashes that made it.

`python -m {{ cookiecutter.module_name }}.pipeline.runs <command>` (the Makefile's runs, lb, report, status,
gc and rerun targets) reads and writes them. This module stays import-light: the pipeline's command line
imports it on every run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


def run_id(train_manifest: dict[str, Any]) -> str:
    """A run's id: when its Train result finished (UTC, sortable) and the Train hash.

    Derived from the cached Train result, not from the clock at submission time, so the
    submission file (named while Submission runs) and the record (written after the run) agree,
    and the same cached result always has the same id.
    """
    finished = datetime.fromisoformat(train_manifest["finished_utc"])
    return f"{finished:%Y%m%d-%H%M%S}-{train_manifest['hash'][:8]}"
