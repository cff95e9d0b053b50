"""Fold schemes for grouped and time-ordered rows: one or two columns of train are read, never the table.

- kfold (classification): scikit-learn's KFold with shuffling, ignoring the classes.
- group: every group's rows in one fold; groups in a seeded random order, each to the fold with
  the fewest rows so far (folds stay about equal in rows).
- stratified_group: scikit-learn's StratifiedGroupKFold with shuffling.
- time: the rows in time order cut into n_folds + 1 blocks; fold k validates block k + 1 and is
  fitted on the rows earlier than that block's first time by more than time_gap. Block 0 is never
  validated (fold -1) and is left out of the CV score. The `fits` column holds, per row, the first
  fold whose model may fit on it, so TrainFold fits fold k on rows with fits <= k.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import checked_competition, shown
from ..errors import ConfigError, DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from .ingest import Ingest


def scheme_folds(scheme: str, data: Ingest, facts: dict) -> pd.DataFrame:
    """The folds table (id, fold[, fits]) of a scheme other than stratified / regression kfold."""
    import numpy as np

    cfg = checked_competition()
    ids = data.load("train", columns=[cfg.id_column])
    if scheme == "kfold":
        return ids.assign(fold=shuffled_folds(len(ids), cfg.n_folds, cfg.seed))
    if scheme == "time":
        fold, fits = time_folds(
            _column(data, facts, "time_column", cfg.time_column, time=True), cfg.n_folds, cfg.time_gap
        )
        return ids.assign(fold=fold, fits=fits)
    groups = _column(data, facts, "group_column", cfg.group_column)
    codes = _codes(groups)
    if scheme == "group":
        fold = group_folds(codes, cfg.n_folds, cfg.seed)
    else:
        from sklearn.model_selection import StratifiedGroupKFold

        y = _codes(data.load("train", columns=[cfg.target_column])[cfg.target_column])
        fold = np.empty(len(codes), dtype=np.int8)
        splitter = StratifiedGroupKFold(n_splits=cfg.n_folds, shuffle=True, random_state=cfg.seed)
        for k, (_, held_out) in enumerate(splitter.split(np.zeros((len(y), 1), dtype=np.int8), y, codes)):
            fold[held_out] = k
    if len(np.unique(codes)) < cfg.n_folds:
        raise DataError(f"train column {cfg.group_column!r} has fewer groups than n_folds = {cfg.n_folds}")
    return ids.assign(fold=fold)


def _column(data: Ingest, facts: dict, key: str, name: str, time: bool = False) -> pd.Series:
    """A train column named by [competition] <key>: present, and for time a number or a date."""
    import numpy as np

    where = shown(data.inputs()["train.csv"])
    if not name:
        raise ConfigError(f"luigi.cfg [competition] {key} is empty: the fold scheme needs a column of train")
    kind = facts["schema"]["train"].get(name)
    if kind is None:
        raise ConfigError(f"luigi.cfg [competition] {key} = {name!r}: {where} has no such column")
    values = data.load("train", columns=[name])[name]
    if not time:
        return values
    if kind not in ("int", "float", "date"):
        raise ConfigError(f"luigi.cfg [competition] {key} = {name!r}: {where} column is {kind}, not a number or date")
    if values.isna().any():
        raise DataError(f"{where}: time column {name!r} has {int(values.isna().sum())} missing values")
    if kind == "date":  # days since the epoch, so that time_gap counts days
        return (values.to_numpy(dtype="datetime64[us]").astype("int64") / 86_400e6).astype("float64")
    return values.to_numpy(dtype=np.float64)


def _codes(values: pd.Series):
    import pandas as pd

    return pd.factorize(values, use_na_sentinel=False)[0]


def group_folds(codes, n_folds: int, seed: int):
    """Each group's rows in one fold: groups in a seeded random order, each to the lightest fold."""
    import numpy as np

    sizes = np.bincount(codes)
    order = np.random.RandomState(seed).permutation(len(sizes))
    fold_of_group = np.empty(len(sizes), dtype=np.int8)
    rows = np.zeros(n_folds, dtype=np.int64)
    for group in order[np.argsort(-sizes[order], kind="stable")]:  # largest first, ties in seeded order
        lightest = int(rows.argmin())
        fold_of_group[group] = lightest
        rows[lightest] += sizes[group]
    return fold_of_group[codes]


def time_folds(times, n_folds: int, gap: float):
    """(fold, fits) per row: n_folds + 1 time-ordered blocks, block 0 never validated (fold -1);
    fits = the first fold whose model may fit on the row (n_folds: none)."""
    import numpy as np

    order = np.argsort(times, kind="stable")
    block = np.empty(len(times), dtype=np.int8)
    block[order] = (np.arange(len(times)) * (n_folds + 1) // len(times)).astype(np.int8)
    fold = (block - 1).astype(np.int8)
    starts = np.array([times[fold == k].min() for k in range(n_folds)])
    fits = np.searchsorted(starts - gap, times, side="right").astype(np.int8)
    return fold, fits


def shuffled_folds(rows: int, n_folds: int, seed: int) -> np.ndarray:
    """The folds of scikit-learn's KFold(n_folds, shuffle=True, random_state=seed), row for row."""
    import numpy as np

    order = np.arange(rows, dtype=np.int32 if rows < 2**31 else np.int64)
    np.random.RandomState(seed).shuffle(order)
    sizes = np.full(n_folds, rows // n_folds)
    sizes[: rows % n_folds] += 1
    fold = np.empty(rows, dtype=np.int8)
    for number, (start, stop) in enumerate(zip(np.cumsum(sizes) - sizes, np.cumsum(sizes), strict=True)):
        fold[order[start:stop]] = number
    return fold
