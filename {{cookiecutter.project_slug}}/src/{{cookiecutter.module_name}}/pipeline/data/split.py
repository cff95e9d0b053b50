"""Split: the one fold assignment that every feature and model shares, so none can leak."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..config import checked_competition, key_columns, shown, target_columns
from ..errors import ConfigError, DataError
from ..storage.cache import CachedTask
from .ingest import Ingest
from .schemes import scheme_folds, shuffled_folds

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
        scheme = {}  # only when set, so that the default's Split keeps its hash
        if cfg.folds or cfg.group_column or len(target_columns()) > 1:
            scheme = {"folds": cfg.folds, "group_column": cfg.group_column, "targets": target_columns()}
            scheme.update(time_column=cfg.time_column, time_gap=cfg.time_gap)
        return {"seed": cfg.seed, "n_folds": cfg.n_folds, "problem_type": cfg.problem_type, **scheme}

    def build(self) -> dict[str, Iterator[pd.DataFrame]]:
        import numpy as np

        cfg = checked_competition()
        data = Ingest()
        facts = data.manifest()["facts"]
        rows = facts["rows"]["train"]
        where = f"{shown(data.inputs()['train'])}: target {cfg.target_column!r}"
        if rows < cfg.n_folds:
            raise ConfigError(f"luigi.cfg [competition] n_folds = {cfg.n_folds} but train has {rows} rows")
        scheme = fold_scheme(cfg.folds, cfg.problem_type, bool(cfg.group_column.strip()), len(target_columns()))
        if scheme in ("group", "stratified_group", "time") or (scheme == "kfold" and cfg.problem_type != "regression"):
            table = scheme_folds(scheme, data, facts)
            self.facts["fold_sizes"] = np.bincount(table["fold"][table["fold"] >= 0], minlength=cfg.n_folds).tolist()
            return {"folds": iter([table])}

        if cfg.problem_type == "regression":
            for target in target_columns():
                if facts["schema"]["train"][target] not in ("int", "float", "bool"):
                    where = f"{shown(data.inputs()['train'])}: target {target!r}"
                    raise DataError(f"{where} is not numeric, but problem_type is regression")
            fold = shuffled_folds(rows, cfg.n_folds, cfg.seed)
            self.facts["fold_sizes"] = np.bincount(fold, minlength=cfg.n_folds).tolist()
            return {"folds": self._write(data, lambda rows, done: fold[done : done + len(rows)])}

        classes, counts = class_counts(data, cfg.target_column)
        if cfg.problem_type == "binary" and len(classes) != 2:
            raise DataError(f"{where} has {len(classes)} distinct values, but problem_type is binary")
        if counts.min() < cfg.n_folds:
            raise DataError(
                f"{where}: class {str(classes[counts.argmin()])!r} has {counts.min()} rows, "
                f"fewer than n_folds = {cfg.n_folds}"
            )
        labels = class_labels(counts, cfg.n_folds, cfg.seed)
        self.facts["fold_sizes"] = sum(np.bincount(k, minlength=cfg.n_folds) for k in labels).tolist()
        code_of, dealt = {label: code for code, label in enumerate(classes)}, np.zeros(len(classes), dtype=np.int64)
        return {
            "folds": self._write(
                data, lambda rows, done: deal(codes_of(rows[cfg.target_column], code_of), labels, dealt)
            )
        }

    def _write(self, data: Ingest, folds_of) -> Iterator[pd.DataFrame]:
        """The folds table (key columns, fold), one batch of Ingest's train rows at a time;
        folds_of(rows, rows_before) gives the folds of a batch."""
        keys = key_columns()
        done = 0
        for rows in data.batches("train", [*keys, target_columns()[0]]):
            yield rows[keys].assign(fold=folds_of(rows, done))
            done += len(rows)


SCHEMES = ("stratified", "kfold", "group", "stratified_group", "time")


def fold_scheme(name: str, problem_type: str, grouped: bool = False, targets: int = 1) -> str:
    """luigi.cfg's [competition] folds, checked. Empty: group when group_column is set (a display is
    never split across folds), else stratified, or kfold for regression and for several targets."""
    if not name:
        return "group" if grouped else "kfold" if problem_type == "regression" or targets > 1 else "stratified"
    if name not in SCHEMES:
        raise ConfigError(f"luigi.cfg [competition] folds = {name!r}: use one of {', '.join(SCHEMES)}")
    if problem_type == "regression" and name.startswith("stratified"):
        raise ConfigError(f"luigi.cfg [competition] folds = {name}: stratified folds need classes, not regression")
    if targets > 1 and name.startswith("stratified"):
        raise ConfigError(f"luigi.cfg [competition] folds = {name}: stratified folds need one target, not {targets}")
    return name


def codes_of(target: pd.Series, code_of: dict) -> np.ndarray:
    """Each row's class number, from a mapping of labels to numbers; a label not in it yet gets
    the next number (so numbers follow the order of first appearance)."""
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(target)
    return np.array([code_of.setdefault(label, len(code_of)) for label in uniques], dtype=np.int32)[codes]


def class_counts(data: Ingest, target: str) -> tuple[list, np.ndarray]:
    """The classes of the target in order of first appearance (as scikit-learn's
    StratifiedKFold numbers them) and their row counts, one batch of rows at a time."""
    import numpy as np

    code_of: dict = {}
    counts = np.zeros(0, dtype=np.int64)
    for rows in data.batches("train", [target]):
        batch = np.bincount(codes_of(rows[target], code_of), minlength=len(code_of))
        counts = np.pad(counts, (0, len(batch) - len(counts))) + batch
    return list(code_of), counts


def class_labels(counts: np.ndarray, n_folds: int, seed: int) -> list[np.ndarray]:
    """For each class, the folds of its rows in order, as scikit-learn's
    StratifiedKFold(n_folds, shuffle=True, random_state=seed) assigns them: the rows sorted by
    class are dealt round robin to the folds, which fixes how many rows of each class each fold
    gets, then each class's fold labels are shuffled. One byte per row in all."""
    import numpy as np

    rng = np.random.RandomState(seed)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    labels = []
    for start, count in zip(starts, counts, strict=True):
        # rows p in [start, start + count) of the sorted order with p % n_folds == i go to fold i
        per_fold = [(start + count - 1 - i) // n_folds - (start - 1 - i) // n_folds for i in range(n_folds)]
        labels.append(np.arange(n_folds, dtype=np.int8).repeat(per_fold))
        rng.shuffle(labels[-1])
    return labels


def deal(codes: np.ndarray, labels: list[np.ndarray], dealt: np.ndarray) -> np.ndarray:
    """The folds of a batch of rows of the given classes: each row takes its class's next
    label. dealt counts the labels of each class taken so far, and is advanced."""
    import numpy as np

    fold = np.empty(len(codes), dtype=np.int8)
    taken = np.bincount(codes, minlength=len(labels))
    if len(codes):  # rows grouped by class, each class's rows in their order, take its labels in order
        by_class = np.argsort(codes, kind="stable")
        fold[by_class] = np.concatenate([labels[k][dealt[k] : dealt[k] + n] for k, n in enumerate(taken) if n])
    dealt += taken
    return fold


def stratified_folds(codes: np.ndarray, counts: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """scikit-learn's StratifiedKFold(n_folds, shuffle=True, random_state=seed) fold of each row."""
    import numpy as np

    return deal(codes, class_labels(counts, n_folds, seed), np.zeros(len(counts), dtype=np.int64))
