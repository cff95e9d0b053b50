"""A demo competition in Kaggle's layout, built offline from a dataset bundled with scikit-learn.

The bundled tables are all numeric and complete, so the demo adds what real competitions have:
a string category derived from a feature, a noise category, a date, and missing values.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from ..storage.disk import sync_file, sync_folder

DATASETS = {
    "binary": "load_breast_cancer",
    "multiclass": "load_wine",
    "regression": "load_diabetes",
}
TEST_FRACTION = 0.2


def _snake(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def demo_tables(problem_type: str, id_column: str, target_column: str, seed: int):
    """Return (train, test, sample_submission) DataFrames for the problem type."""
    import numpy as np
    import pandas as pd
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, DATASETS[problem_type])(as_frame=True)
    features = bunch.data.rename(columns=_snake).reset_index(drop=True)
    rows = len(features)
    rng = np.random.default_rng(seed)

    signal = features.columns[0]
    features["size_band"] = pd.qcut(features[signal], 3, labels=["small", "medium", "large"])
    features["size_band"] = features["size_band"].astype("str").where(rng.random(rows) > 0.05)
    features["region"] = rng.choice(["north", "south", "east", "west"], rows)
    day = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 366, rows), unit="D")
    features["visit_date"] = pd.Series(day).dt.strftime("%Y-%m-%d")
    for column in features.columns[1:3]:
        features.loc[rng.random(rows) < 0.05, column] = np.nan

    if problem_type == "multiclass":
        target = pd.Series(np.asarray(bunch.target_names)[bunch.target], name=target_column)
    else:
        target = bunch.target.rename(target_column).reset_index(drop=True)

    ids = pd.Series(np.arange(1, rows + 1), name=id_column)
    order = rng.permutation(rows)
    n_test = int(rows * TEST_FRACTION)
    test_rows, train_rows = np.sort(order[:n_test]), np.sort(order[n_test:])

    train = pd.concat([ids, features, target], axis=1).iloc[train_rows].reset_index(drop=True)
    test = pd.concat([ids, features], axis=1).iloc[test_rows].reset_index(drop=True)
    sample = pd.DataFrame({id_column: test[id_column]})
    if problem_type == "binary":
        sample[target_column] = 0.5
    elif problem_type == "multiclass":
        for label in sorted(target.unique()):
            sample[label] = round(1 / target.nunique(), 6)
    else:
        sample[target_column] = round(float(target.mean()), 6)
    return train, test, sample


def write_demo(raw: Path, problem_type: str, id_column: str, target_column: str, seed: int) -> None:
    """Write train.csv, test.csv and sample_submission.csv into `raw`, all three or none."""
    tables = demo_tables(problem_type, id_column, target_column, seed)
    raw.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".demo-{os.getpid()}-", dir=raw))
    try:
        names = ("train.csv", "test.csv", "sample_submission.csv")
        for name, table in zip(names, tables, strict=True):
            table.to_csv(staging / name, index=False)
        for name in names:
            sync_file(staging / name)
        for name in names:
            os.rename(staging / name, raw / name)
        sync_folder(raw)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
