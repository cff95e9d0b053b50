"""CV metrics by name, as luigi.cfg's [competition] metric names them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ConfigError

DEFAULT_METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}


@dataclass(frozen=True)
class Metric:
    """score(y, prediction): y holds class indices (classification) or values (regression);
    prediction holds P(positive class) (binary), one probability column per class
    (multiclass), or values (regression)."""

    name: str
    problem_types: tuple[str, ...]
    greater_is_better: bool
    score: Callable


def _roc_auc(y, p):
    from sklearn.metrics import roc_auc_score

    return roc_auc_score(y, p)


def _log_loss(y, p):
    import numpy as np
    from sklearn.metrics import log_loss

    p = np.asarray(p)
    labels = list(range(p.shape[1])) if p.ndim == 2 else [0, 1]
    return log_loss(y, p, labels=labels)


def _accuracy(y, p):
    import numpy as np

    p = np.asarray(p)
    predicted = p.argmax(axis=1) if p.ndim == 2 else (p >= 0.5).astype(int)
    return float((predicted == np.asarray(y)).mean())


def _rmse(y, p):
    import numpy as np

    return float(np.sqrt(np.mean((np.asarray(y, dtype=float) - np.asarray(p, dtype=float)) ** 2)))


def _rmsle(y, p):
    import numpy as np

    return _rmse(np.log1p(np.asarray(y, dtype=float)), np.log1p(np.clip(p, 0, None)))


def _mae(y, p):
    import numpy as np

    return float(np.mean(np.abs(np.asarray(y, dtype=float) - np.asarray(p, dtype=float))))


def _r2(y, p):
    from sklearn.metrics import r2_score

    return r2_score(y, p)


METRICS = {
    m.name: m
    for m in (
        Metric("roc_auc", ("binary",), True, _roc_auc),
        Metric("log_loss", ("binary", "multiclass"), False, _log_loss),
        Metric("accuracy", ("binary", "multiclass"), True, _accuracy),
        Metric("rmse", ("regression",), False, _rmse),
        Metric("rmsle", ("regression",), False, _rmsle),
        Metric("mae", ("regression",), False, _mae),
        Metric("r2", ("regression",), True, _r2),
    )
}


def metric_for(name: str, problem_type: str) -> Metric:
    """The metric luigi.cfg names (empty: the problem type's default)."""
    name = name or DEFAULT_METRIC[problem_type]
    metric = METRICS.get(name)
    if metric is None or problem_type not in metric.problem_types:
        allowed = ", ".join(m.name for m in METRICS.values() if problem_type in m.problem_types)
        raise ConfigError(f"luigi.cfg [competition] metric = {name!r}: for {problem_type} use one of {allowed}")
    return metric
