"""CV metrics: what a metric is, and the built-ins that metrics/__init__.py lists in METRICS.

A metric is one function, score(y, prediction, groups) -> number, plus its direction. y holds class
numbers (classification, the classes sorted) or values (regression); prediction holds P(positive
class) (binary), one probability column per class (multiclass) or values (regression); groups holds
each row's value of `[competition] group_column`, or is None when none is set.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace

from ..config import PROBLEM_TYPES

DEFAULT_METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}
AT_K = "@K"  # a name ending so stands for a family: map@K is map@1, map@12, ... (score gets k=)


@dataclass(frozen=True)
class Metric:
    """A registered metric: `[competition] metric` names it. needs_groups: it scores rows within
    their groups (luigi.cfg must then set group_column, and the folds keep each group whole)."""

    name: str
    score: Callable
    greater_is_better: bool
    needs_groups: bool = False
    problem_types: tuple[str, ...] = PROBLEM_TYPES

    def __call__(self, y, prediction, groups=None) -> float:
        return float(self.score(y, prediction, groups))

    def at(self, k: int) -> Metric:
        """One member of a family (map@K -> map@12)."""
        return replace(self, name=self.name.removesuffix(AT_K) + f"@{k}", score=functools.partial(self.score, k=k))


def _roc_auc(y, p, groups):
    from sklearn.metrics import roc_auc_score

    return roc_auc_score(y, p)


def _log_loss(y, p, groups):
    import numpy as np
    from sklearn.metrics import log_loss

    p = np.asarray(p)
    labels = list(range(p.shape[1])) if p.ndim == 2 else [0, 1]
    return log_loss(y, p, labels=labels)


def _classes(p):
    """The predicted class number: the most probable class, or P(positive) >= 0.5."""
    import numpy as np

    p = np.asarray(p)
    return p.argmax(axis=1) if p.ndim == 2 else (p >= 0.5).astype(int)


def _accuracy(y, p, groups):
    import numpy as np

    return float((_classes(p) == np.asarray(y)).mean())


def _f1_macro(y, p, groups):
    from sklearn.metrics import f1_score

    return f1_score(y, _classes(p), average="macro")


def _qwk(y, p, groups):
    """Quadratic weighted kappa of ordinal classes: the prediction rounded to the nearest class
    (regression: the nearest value y takes; multiclass: the expected class number, rounded;
    binary: P(positive) rounded)."""
    import numpy as np
    from sklearn.metrics import cohen_kappa_score

    y, p = np.asarray(y), np.asarray(p, dtype=float)
    if p.ndim == 2:  # multiclass probabilities: the expected class number
        p = p @ np.arange(p.shape[1])
    values = np.unique(y).astype(float)
    middles = (values[1:] + values[:-1]) / 2
    nearest = values[np.searchsorted(middles, p, side="left")] if len(values) > 1 else np.full(len(p), values[0])
    return cohen_kappa_score(y.astype(float), nearest, weights="quadratic")


def _rmse(y, p, groups):
    import numpy as np

    return float(np.sqrt(np.mean((np.asarray(y, dtype=float) - np.asarray(p, dtype=float)) ** 2)))


def _rmsle(y, p, groups):
    import numpy as np

    return _rmse(np.log1p(np.asarray(y, dtype=float)), np.log1p(np.clip(p, 0, None)), groups)


def _mae(y, p, groups):
    import numpy as np

    return float(np.mean(np.abs(np.asarray(y, dtype=float) - np.asarray(p, dtype=float))))


def _r2(y, p, groups):
    from sklearn.metrics import r2_score

    return r2_score(y, p)


def ranked_within_groups(y, p, groups):
    """(y in each group's order best prediction first, each row's rank in its group from 0, the
    groups' first positions, the group sizes): rows sorted by group, then by prediction from the
    highest; ties keep the rows' order."""
    import numpy as np

    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    codes = np.unique(np.asarray(groups), return_inverse=True)[1].ravel()
    order = np.lexsort((np.arange(len(p)), -p, codes))
    codes = codes[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    sizes = np.diff(np.r_[starts, len(codes)])
    rank = np.arange(len(codes)) - np.repeat(starts, sizes)
    return y[order], rank, starts, sizes


def _map_at(y, p, groups, k: int):
    """Mean over groups of the average precision of the first k rows by prediction (Kaggle's
    apk: precision at each relevant row, divided by min(relevant rows, k)); a group with no
    relevant row scores 0."""
    import numpy as np

    relevant, rank, starts, sizes = ranked_within_groups(np.asarray(y) > 0, p, groups)
    hits = relevant * (rank < k)
    running = np.cumsum(hits)
    hits_so_far = running - np.repeat(np.r_[0.0, running[starts[1:] - 1]], sizes)  # within the group
    precision = np.where(hits > 0, hits_so_far / (rank + 1), 0.0)
    total = np.add.reduceat(relevant, starts)
    return float(np.mean(np.add.reduceat(precision, starts) / np.maximum(np.minimum(total, k), 1)))


def _ndcg_at(y, p, groups, k: int):
    """Mean over groups of DCG@k / ideal DCG@k with y as the gains (linear gains, as scikit-learn's
    ndcg_score); a group whose gains are all 0 scores 0."""
    import numpy as np

    gains, rank, starts, sizes = ranked_within_groups(y, p, groups)
    discount = np.where(rank < k, 1 / np.log2(rank + 2), 0.0)
    dcg = np.add.reduceat(gains * discount, starts)
    best = np.concatenate([-np.sort(-gains[s : s + n]) for s, n in zip(starts, sizes, strict=True)])
    ideal = np.add.reduceat(best * discount, starts)
    return float(np.mean(np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0)))


CLASSIFICATION = ("binary", "multiclass")
RANKING = ("binary", "regression")  # a score to order each group's rows by

BUILT_IN_METRICS = [
    Metric("roc_auc", _roc_auc, True, problem_types=("binary",)),
    Metric("log_loss", _log_loss, False, problem_types=CLASSIFICATION),
    Metric("accuracy", _accuracy, True, problem_types=CLASSIFICATION),
    Metric("f1_macro", _f1_macro, True, problem_types=CLASSIFICATION),
    Metric("qwk", _qwk, True),
    Metric("rmse", _rmse, False, problem_types=("regression",)),
    Metric("rmsle", _rmsle, False, problem_types=("regression",)),
    Metric("mae", _mae, False, problem_types=("regression",)),
    Metric("r2", _r2, True, problem_types=("regression",)),
    Metric("map" + AT_K, _map_at, True, needs_groups=True, problem_types=RANKING),
    Metric("ndcg" + AT_K, _ndcg_at, True, needs_groups=True, problem_types=RANKING),
]


def train_groups():
    """Each train row's value of `[competition] group_column` (Ingest's row order), what a metric gets
    as groups; None when group_column is empty."""
    from ..config import checked_competition, shown
    from ..data.ingest import Ingest
    from ..errors import ConfigError

    name = checked_competition().group_column.strip()
    if not name:
        return None
    data = Ingest()
    if name not in data.manifest()["facts"]["schema"]["train"]:
        where = shown(data.inputs()["train"])
        raise ConfigError(f"luigi.cfg [competition] group_column = {name!r}: {where} has no such column")
    return data.load("train", columns=[name])[name].to_numpy()
