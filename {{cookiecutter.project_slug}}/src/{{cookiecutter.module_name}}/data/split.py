"""Split: the one fold assignment that every feature and model shares, so none can leak."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..cache import CachedTask
from ..config import checked_competition, shown
from ..errors import ConfigError, DataError
from .ingest import Ingest

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


class Split(CachedTask):
    """Assigns each training row to one of n_folds folds, from the seed in luigi.cfg.

    Classification folds are stratified by the target. The same seed gives byte-identical
    folds; another seed gives another folder, leaving this one as it was. The folds are
    scikit-learn's (Stratified)KFold with shuffling, computed here in a few bytes per row, so
    that a split of a hundred million rows fits in memory.
    """

    def requires(self) -> Ingest:
        return Ingest()

    def settings(self) -> dict[str, Any]:
        cfg = checked_competition()
        return {"seed": cfg.seed, "n_folds": cfg.n_folds, "problem_type": cfg.problem_type}

    def build(self) -> dict[str, Iterator[pd.DataFrame]]:
        import numpy as np

        cfg = checked_competition()
        data = Ingest()
        facts = data.manifest()["facts"]
        rows = facts["rows"]["train"]
        where = f"{shown(data.inputs()['train.csv'])}: target {cfg.target_column!r}"
        if rows < cfg.n_folds:
            raise ConfigError(f"luigi.cfg [competition] n_folds = {cfg.n_folds} but train has {rows} rows")

        if cfg.problem_type == "regression":
            if facts["schema"]["train"][cfg.target_column] not in ("int", "float", "bool"):
                raise DataError(f"{where} is not numeric, but problem_type is regression")
            fold = shuffled_folds(rows, cfg.n_folds, cfg.seed)
        else:
            codes, classes = class_codes(data, cfg.target_column)
            counts = np.bincount(codes, minlength=len(classes))
            if cfg.problem_type == "binary" and len(classes) != 2:
                raise DataError(f"{where} has {len(classes)} distinct values, but problem_type is binary")
            if counts.min() < cfg.n_folds:
                raise DataError(
                    f"{where}: class {str(classes[counts.argmin()])!r} has {counts.min()} rows, "
                    f"fewer than n_folds = {cfg.n_folds}"
                )
            fold = stratified_folds(codes, counts, cfg.n_folds, cfg.seed)
        self.facts["fold_sizes"] = np.bincount(fold, minlength=cfg.n_folds).tolist()
        return {"folds": _with_ids(data, cfg.id_column, fold)}


def class_codes(data: Ingest, target: str) -> tuple[np.ndarray, list]:
    """Each train row's class as a small integer, numbered in order of first appearance (as
    scikit-learn's StratifiedKFold numbers them), read one batch of rows at a time."""
    import numpy as np
    import pandas as pd

    classes: dict = {}
    parts = []
    for rows in data.batches("train", [target]):
        codes, uniques = pd.factorize(rows[target])
        renumber = np.array([classes.setdefault(label, len(classes)) for label in uniques], dtype=np.int32)
        parts.append(renumber[codes])
    return np.concatenate(parts), list(classes)


def stratified_folds(codes: np.ndarray, counts: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """The folds of scikit-learn's StratifiedKFold(n_folds, shuffle=True, random_state=seed),
    row for row, in a few bytes per row instead of dozens.

    As there, the rows sorted by class are dealt round robin to the folds, which fixes how
    many rows of each class each fold gets; each class's fold labels are then shuffled.
    """
    import numpy as np

    rng = np.random.RandomState(seed)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    ends = starts + counts
    fold = np.empty(len(codes), dtype=np.int8)
    for k in range(len(counts)):
        # rows p in [start, end) of the sorted order with p % n_folds == i go to fold i
        per_fold = [(ends[k] - 1 - i) // n_folds - (starts[k] - 1 - i) // n_folds for i in range(n_folds)]
        labels = np.arange(n_folds, dtype=np.int8).repeat(per_fold)
        rng.shuffle(labels)
        fold[codes == k] = labels
    return fold


def shuffled_folds(rows: int, n_folds: int, seed: int) -> np.ndarray:
    """The folds of scikit-learn's KFold(n_folds, shuffle=True, random_state=seed), row for row."""
    import numpy as np

    order = np.arange(rows, dtype=np.int32 if rows < 2**31 else np.int64)
    np.random.RandomState(seed).shuffle(order)
    sizes = np.full(n_folds, rows // n_folds)
    sizes[: rows % n_folds] += 1
    fold = np.empty(rows, dtype=np.int8)
    for number, (start, stop) in enumerate(zip(np.cumsum(sizes) - sizes, np.cumsum(sizes))):
        fold[order[start:stop]] = number
    return fold


def _with_ids(data: Ingest, id_column: str, fold: np.ndarray) -> Iterator[pd.DataFrame]:
    """The folds table (id, fold), one batch of Ingest's train rows at a time."""
    done = 0
    for rows in data.batches("train", [id_column]):
        yield rows.assign(fold=fold[done : done + len(rows)])
        done += len(rows)
