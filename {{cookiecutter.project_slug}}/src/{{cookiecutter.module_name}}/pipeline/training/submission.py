"""Submission: the test predictions in the sample submission's exact columns, keys and row order.

The file's form is `[submission] format`: `rows` (the sample's rows, predictions filled in), `ranked`
(per key of the sample, the test rows' values listed best first) or a function of FORMATS; whatever
the form, the file is checked against the sample before it is written.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import checked_competition, file_keys, key_columns, shown, submission_format, submissions_dir, top_k
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
        from ..registry import format_named
        from ..storage.cache import module_hash

        form = submission_format()
        function = format_named(form)
        shape = {} if form == "rows" else {"format": form, "top_k": top_k()}  # rows: the hash it always had
        if function is not None:  # a format of yours, edited, writes the file again
            shape["format_code"] = module_hash(function.__module__)
        return {"id_column": checked_competition().id_column, **shape}  # the key columns, as luigi.cfg names them

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
        import pandas as pd

        cfg = checked_competition()
        data, model = Ingest(), self.predictions()
        sample = data.load("sample_submission")
        predictions = model.load("test")
        manifest = model.manifest()
        facts = manifest["facts"]
        keys, where = key_columns(), shown(data.inputs()["sample_submission"])
        form = submission_format()
        if form == "rows":
            submission = make_submission(sample, predictions, keys, cfg.problem_type, facts["classes"])
        elif form == "ranked":
            submission = ranked_submission(sample, predictions, keys, top_k(), where)
        else:
            from ..registry import format_named

            submission = format_named(form)(predictions, sample)
            if not isinstance(submission, pd.DataFrame):
                raise DataError(f"[submission] format {form} returned {type(submission).__name__}, not a DataFrame")
        validate(submission, sample, file_keys(list(sample.columns)), where)

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


def _key_indexes(first: pd.DataFrame, second: pd.DataFrame, keys: list[str]) -> tuple[pd.Index, pd.Index]:
    """Both frames' keys as indexes that compare as the keys' text: of values (one column) or of
    tuples of them (several). Integer keys on both sides are kept as numbers, which compare as
    their text does and cost nothing to convert; any other pair of columns is turned to text."""
    import pandas as pd

    as_text = not all(pd.api.types.is_integer_dtype(f[key]) for f in (first, second) for key in keys)

    def index(frame: pd.DataFrame) -> pd.Index:
        columns = [(frame[key].astype("string") if as_text else frame[key]).to_numpy() for key in keys]
        return pd.Index(columns[0]) if len(keys) == 1 else pd.MultiIndex.from_arrays(columns)

    return index(first), index(second)


def make_submission(
    sample: pd.DataFrame, predictions: pd.DataFrame, keys: str | list[str], problem_type: str, classes: list
) -> pd.DataFrame:
    """Fill the sample's prediction columns, in its row order, each row's predictions found by its key
    (the key columns' values, compared as text).

    Columns named as the predictions' (each target of several, each class of multiclass) get those;
    binary columns named after the classes get each class's probability; a single column gets
    P(positive class) for binary, the most likely label for multiclass, the value for regression.
    """
    import numpy as np

    keys = [keys] if isinstance(keys, str) else list(keys)
    by_key, sample_keys = _key_indexes(predictions, sample, keys)
    by_id = predictions.drop(columns=keys).set_axis(by_key)
    aligned = by_id.reindex(sample_keys)
    targets = [c for c in sample.columns if c not in keys]
    submission = sample[keys].copy()
    class_names = [str(c) for c in classes]
    if set(targets) <= set(by_id.columns):  # columns of the same names: several targets, or the classes
        for column in targets:
            submission[column] = aligned[column].to_numpy()
    elif classes and sorted(targets) == sorted(class_names):  # binary, a column per class
        positive = aligned["prediction"].to_numpy()
        for column in targets:
            submission[column] = positive if column == class_names[1] else 1 - positive
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


def ranked_submission(
    sample: pd.DataFrame, predictions: pd.DataFrame, keys: list[str], top_k: int | None, where: str
) -> pd.DataFrame:
    """The sample as a key column and a list column (display_id, ad_id): for each of its keys, in its
    order, the values of the test rows with that key, best predicted first, separated by spaces, at
    most top_k (None: all). The values listed are the list column's when it is a key column, else the
    one other key column's; ties are broken by the values themselves, in their natural order."""
    import numpy as np
    import pandas as pd

    if len(sample.columns) != 2:
        raise DataError(f"{where}: format = ranked reads a key column and a list column, not {list(sample.columns)}")
    key, listed = sample.columns
    others = [k for k in keys if k != key]
    items = listed if listed in keys else others[0] if len(others) == 1 else None
    if key not in keys or items is None or "prediction" not in predictions:
        raise DataError(
            f"{where}: format = ranked needs its first column ({key!r}) and the values it lists among the "
            f"key columns {keys} (the sample's second column, or the one other key), and one prediction per test row"
        )
    rows = predictions[[key, items, "prediction"]].copy()
    rows["_group"] = rows[key].astype("string")
    order = np.lexsort((rows[items].to_numpy(), -rows["prediction"].to_numpy(dtype=float), rows["_group"].to_numpy()))
    rows = rows.iloc[order]
    if top_k is not None:
        rows = rows[rows.groupby("_group", sort=False).cumcount() < top_k]
    lists = rows[items].astype("string").groupby(rows["_group"], sort=False).agg(" ".join)
    wanted = sample[key].astype("string")
    missing = wanted[~wanted.isin(lists.index)]
    extra = lists.index[~lists.index.isin(wanted)]
    if len(missing) or len(extra):
        raise DataError(
            f"{where}: {key!r} values do not match the test rows' ({len(missing)} only in the sample, e.g. "
            f"{', '.join(missing.head(3)) or '-'}; {len(extra)} only in test, e.g. {', '.join(extra[:3]) or '-'})"
        )
    return pd.DataFrame({key: sample[key].to_numpy(), listed: lists.reindex(wanted.to_numpy()).to_numpy()})


def validate(submission: pd.DataFrame, sample: pd.DataFrame, keys: str | list[str], where: str) -> None:
    """Same columns, keys (compared as text) and row order as the sample; no missing or infinite values."""
    import numpy as np
    import pandas as pd

    keys = [keys] if isinstance(keys, str) else list(keys)
    if list(submission.columns) != list(sample.columns):
        raise DataError(f"{where}: submission columns {list(submission.columns)} differ from {list(sample.columns)}")
    written, expected = _key_indexes(submission, sample, keys)
    if len(submission) != len(sample) or not written.equals(expected):
        raise DataError(f"{where}: submission ids or row order differ from the sample")
    for column in submission.columns:
        values = submission[column]
        if values.isna().any():
            raise DataError(f"{where}: submission column {column!r} has {int(values.isna().sum())} missing values")
        if pd.api.types.is_float_dtype(values) and not np.isfinite(values.to_numpy()).all():
            raise DataError(f"{where}: submission column {column!r} has infinite values")
