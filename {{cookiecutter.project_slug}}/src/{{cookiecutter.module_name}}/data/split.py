"""Split: the one fold assignment that every feature and model shares, so none can leak."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..cache import CachedTask
from ..config import checked_competition, shown
from ..errors import ConfigError, DataError
from .ingest import Ingest

if TYPE_CHECKING:
    import pandas as pd


class Split(CachedTask):
    """Assigns each training row to one of n_folds folds, from the seed in luigi.cfg.

    Classification folds are stratified by the target. The same seed gives byte-identical
    folds; another seed gives another folder, leaving this one as it was.
    """

    def requires(self) -> Ingest:
        return Ingest()

    def settings(self) -> dict[str, Any]:
        cfg = checked_competition()
        return {"seed": cfg.seed, "n_folds": cfg.n_folds, "problem_type": cfg.problem_type}

    def build(self) -> dict[str, pd.DataFrame]:
        import numpy as np
        import pandas as pd
        from sklearn.model_selection import KFold, StratifiedKFold

        cfg = checked_competition()
        train = Ingest().load("train", columns=[cfg.id_column, cfg.target_column])
        target = train[cfg.target_column]
        where = f"{shown(Ingest().inputs()['train.csv'])}: target {cfg.target_column!r}"
        if len(train) < cfg.n_folds:
            raise ConfigError(f"luigi.cfg [competition] n_folds = {cfg.n_folds} but train has {len(train)} rows")

        if cfg.problem_type == "regression":
            if not np.issubdtype(target.dtype, np.number):
                raise DataError(f"{where} is not numeric, but problem_type is regression")
            splitter = KFold(cfg.n_folds, shuffle=True, random_state=cfg.seed)
        else:
            counts = target.value_counts()
            if cfg.problem_type == "binary" and len(counts) != 2:
                raise DataError(f"{where} has {len(counts)} distinct values, but problem_type is binary")
            if counts.min() < cfg.n_folds:
                raise DataError(
                    f"{where}: class {str(counts.idxmin())!r} has {counts.min()} rows, fewer than n_folds = {cfg.n_folds}"
                )
            splitter = StratifiedKFold(cfg.n_folds, shuffle=True, random_state=cfg.seed)

        # Folds depend only on which rows share a class, so integer codes give the same folds as
        # the labels, in far less memory than strings; np.zeros is not touched, so costs nothing.
        labels = target.to_numpy() if cfg.problem_type == "regression" else pd.factorize(target)[0]
        fold = np.zeros(len(train), dtype="int8")
        for number, (_, rows) in enumerate(splitter.split(np.zeros(len(train)), labels)):
            fold[rows] = number
        self.facts["fold_sizes"] = np.bincount(fold).tolist()
        return {"folds": train[[cfg.id_column]].assign(fold=fold)}
