"""Submission: the test predictions in sample_submission.csv's exact columns and row order."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import checked_competition, shown, submissions_dir
from ..data.ingest import Ingest
from ..errors import DataError
from ..runs import run_id
from ..storage.cache import CachedTask, atomic_file, hashes_fixed
from .train import Train

if TYPE_CHECKING:
    import pandas as pd

FILE = "submission.csv"


class Submission(CachedTask):
    """Builds and validates submission.csv, then copies it to submissions/ under a name
    that carries its run id, CV score and own hash (runs/<run id>.json is its run record):
    a submission changed under the same Train result gets a file of its own."""

    def requires(self) -> dict[str, CachedTask]:
        from ..config import train

        # [train] models: more models that `make all` trains besides the submitted one
        others = [Train(model=name) for name in train().models]
        return {"data": Ingest(), "train": self.predictions(), **({"models": others} if others else {})}

    def predictions(self) -> CachedTask:
        """The task whose test predictions this submission holds."""
        from ..config import submission

        if submission().source == "blend":  # luigi.cfg [submission] source, or make submission FROM=blend
            from .blend import Blend

            return Blend()
        return Train()

    def settings(self) -> dict[str, Any]:
        return {"id_column": checked_competition().id_column}

    def complete(self) -> bool:
        """Done when the results are (sizes checked, upstream included) and the copy in submissions/
        is whole."""
        with hashes_fixed():  # each hash is computed once: complete() is on the hot path
            if not super().complete():
                return False
            manifest = self.manifest()  # on S3 without a local copy: one GET, no data
            copy = submissions_dir() / manifest["facts"]["file"]
            return copy.is_file() and copy.stat().st_size == manifest["files"][FILE]["bytes"]

    def run(self) -> None:
        if not self.output().exists():
            super().run()
        with atomic_file(self.path()) as tmp:
            shutil.copyfile(self.done_folder() / FILE, tmp)

    def build(self) -> dict[str, pd.DataFrame]:
        cfg = checked_competition()
        data, model = Ingest(), self.predictions()
        sample = data.load("sample_submission")
        predictions = model.load("test")
        manifest = model.manifest()
        facts = manifest["facts"]
        submission = make_submission(sample, predictions, cfg.id_column, cfg.problem_type, facts["classes"])
        where = shown(data.inputs()["sample_submission.csv"])
        validate(submission, sample, cfg.id_column, where)

        submission.to_csv(self.workdir / FILE, index=False)
        score, run = facts["cv_score"], run_id(manifest)
        self.facts.update(
            metric=facts["metric"],
            cv_score=score,
            run_id=run,
            file=f"submission-{run}-{facts['metric']}-{score:.5f}-{self.task_hash()[:8]}.csv",
        )
        return {}

    def path(self) -> Path:
        """The submission file in submissions/ (after the task has run)."""
        return submissions_dir() / self.manifest()["facts"]["file"]  # on S3: the manifest only


def make_submission(
    sample: pd.DataFrame, predictions: pd.DataFrame, id_column: str, problem_type: str, classes: list
) -> pd.DataFrame:
    """Fill the sample's prediction columns, in its row order.

    Columns named after the classes get each class's probability; a single column gets
    P(positive class) for binary, the most likely label for multiclass, the value for regression.
    """
    import numpy as np

    by_id = predictions.set_index(predictions[id_column].astype("string").to_numpy()).drop(columns=[id_column])
    aligned = by_id.reindex(sample[id_column].astype("string"))
    targets = [c for c in sample.columns if c != id_column]
    submission = sample[[id_column]].copy()
    class_names = [str(c) for c in classes]
    if classes and sorted(targets) == sorted(class_names):
        if problem_type == "binary":
            positive = aligned["prediction"].to_numpy()
            for column in targets:
                submission[column] = positive if column == class_names[1] else 1 - positive
        else:
            for column in targets:
                submission[column] = aligned[column].to_numpy()
    elif len(targets) == 1:
        if problem_type == "multiclass":
            best = aligned[class_names].to_numpy().argmax(axis=1)
            submission[targets[0]] = np.asarray(classes, dtype=object)[best]
        else:
            submission[targets[0]] = aligned["prediction"].to_numpy()
    else:
        raise DataError(
            f"sample_submission.csv: columns {targets} are neither one prediction column nor the classes {class_names}"
        )
    return submission


def validate(submission: pd.DataFrame, sample: pd.DataFrame, id_column: str, where: str) -> None:
    """Same columns, ids and row order as the sample; no missing or infinite values."""
    import numpy as np
    import pandas as pd

    if list(submission.columns) != list(sample.columns):
        raise DataError(f"{where}: submission columns {list(submission.columns)} differ from {list(sample.columns)}")
    if len(submission) != len(sample) or not submission[id_column].equals(sample[id_column]):
        raise DataError(f"{where}: submission ids or row order differ from the sample")
    for column in submission.columns:
        values = submission[column]
        if values.isna().any():
            raise DataError(f"{where}: submission column {column!r} has {int(values.isna().sum())} missing values")
        if pd.api.types.is_float_dtype(values) and not np.isfinite(values.to_numpy()).all():
            raise DataError(f"{where}: submission column {column!r} has infinite values")
