"""A demo competition in Kaggle's layout, built offline from a dataset bundled with scikit-learn.

The bundled tables are all numeric and complete, so the demo adds what real competitions have:
a string category derived from a feature, a noise category, a date, missing values, and an
auxiliary table: `visits`, several rows per row of train and test (history, as Home Credit's
bureau or AmEx's statements), whose amounts carry some of the signal.
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
AUXILIARY = "visits"
KEY_BASE = 4  # a key of several columns: the later columns count 1..KEY_BASE, the first the rest


def _snake(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def _keys(rows: int, keys: list[str]):
    """Key columns for rows 0..rows-1: 1..rows for one column; for several, numbers whose
    combination is unique (a display and its ads)."""
    import numpy as np
    import pandas as pd

    position = np.arange(rows)
    columns = {}
    for place, key in enumerate(keys):
        step = KEY_BASE ** (len(keys) - 1 - place)
        columns[key] = position // step + 1 if place == 0 else position // step % KEY_BASE + 1
    return pd.DataFrame(columns)


def demo_tables(problem_type: str, keys: str | list[str], target_column: str, seed: int):
    """Return (train, test, sample_submission, visits) DataFrames for the problem type."""
    import numpy as np
    import pandas as pd
    import sklearn.datasets

    keys = [keys] if isinstance(keys, str) else list(keys)
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
    strength = (features[signal] - features[signal].mean()) / features[signal].std()
    for column in features.columns[1:3]:
        features.loc[rng.random(rows) < 0.05, column] = np.nan

    if problem_type == "multiclass":
        target = pd.Series(np.asarray(bunch.target_names)[bunch.target], name=target_column)
    else:
        target = bunch.target.rename(target_column).reset_index(drop=True)

    ids = _keys(rows, keys)
    order = rng.permutation(rows)
    n_test = int(rows * TEST_FRACTION)
    test_rows, train_rows = np.sort(order[:n_test]), np.sort(order[n_test:])

    train = pd.concat([ids, features, target], axis=1).iloc[train_rows].reset_index(drop=True)
    test = pd.concat([ids, features], axis=1).iloc[test_rows].reset_index(drop=True)
    sample = test[keys].copy()
    if problem_type == "binary":
        sample[target_column] = 0.5
    elif problem_type == "multiclass":
        for label in sorted(target.unique()):
            sample[label] = round(1 / target.nunique(), 6)
    else:
        sample[target_column] = round(float(target.mean()), 6)
    return train, test, sample, visits_table(ids, strength.to_numpy(), rng)


def visits_table(ids, strength, rng):
    """1 to 8 visits per row (rows' key columns, date, amount, channel), in date order; the amounts
    follow the row's signal, so their mean is a feature worth having."""
    import numpy as np
    import pandas as pd

    counts = rng.integers(1, 9, len(ids))
    owner = np.repeat(np.arange(len(ids)), counts)
    day = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 730, len(owner)), unit="D")
    visits = ids.iloc[owner].reset_index(drop=True)
    visits["visit_date"] = pd.Series(day).dt.strftime("%Y-%m-%d")
    visits["amount"] = (50 + 12 * strength[owner] + rng.normal(0, 10, len(owner))).round(2)
    visits["channel"] = rng.choice(["web", "store", "phone"], len(owner), p=[0.5, 0.3, 0.2])
    return visits.sort_values(["visit_date", *ids.columns], kind="stable").reset_index(drop=True)


def write_demo(
    raw: Path,
    problem_type: str,
    keys: str | list[str],
    target_column: str,
    seed: int,
    names: dict[str, str] | None = None,
) -> None:
    """Write train.csv, test.csv, sample_submission.csv and visits.csv into `raw` (named after the
    tables `names` gives the roles, when given), all or none. When test is the sample itself, the
    test rows are written once, as the sample."""
    names = names or {"train": "train", "test": "test", "sample_submission": "sample_submission"}
    train, test, sample, visits = demo_tables(problem_type, keys, target_column, seed)
    tables = {names["train"]: train, names["test"]: test, names["sample_submission"]: sample, AUXILIARY: visits}
    raw.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".demo-{os.getpid()}-", dir=raw))
    try:
        files = [f"{name}.csv" for name in tables]
        for name, table in zip(files, tables.values(), strict=True):
            table.to_csv(staging / name, index=False)
        for name in files:
            sync_file(staging / name)
        for name in files:
            os.rename(staging / name, raw / name)
        sync_folder(raw)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
