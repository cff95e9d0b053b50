"""Blend: non-negative weights summing to 1 over trained models' out-of-fold predictions.

Every model's out-of-fold predictions come from the one Split, so they are comparable and the
blend leaks nothing; the honest CV is nested: each fold is scored with weights chosen on the
other folds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import luigi

from ..cache import CachedTask
from ..config import blend, checked_competition
from ..data.ingest import Ingest
from ..data.split import Split
from ..errors import ConfigError
from .metrics import Metric, metric_for
from .train import Train

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

STEPS = 100  # greedy selection steps at most: weights are multiples of 1/steps
PATIENCE = 10  # steps without a better blend before the selection stops


class Blend(CachedTask):
    """Weights over the models of `[blend] models` (or `make blend MODELS="hgb lgbm"`), chosen by
    greedy forward selection with replacement (Caruana et al. 2004) on the CV metric; for roc_auc
    the models' predictions are ranks first. Writes `oof`, `test`, `weights` and `scores` (per fold:
    in-sample and nested); the facts hold both CV figures (`cv_score` is the nested one) and the
    component Train hashes."""

    models = luigi.ListParameter(default=[])

    def names(self) -> list[str]:
        from ..models import MODELS

        names = list(self.models) or list(blend().models) or [cls.name for cls in MODELS]
        if len(names) < 2:
            raise ConfigError("luigi.cfg [blend] models: list two or more trained models to blend")
        return names

    def requires(self) -> dict[str, Any]:
        return {"data": Ingest(), "split": Split(), "trains": [Train(model=name) for name in self.names()]}

    def settings(self) -> dict[str, Any]:
        return {"models": self.names(), "steps": STEPS, "patience": PATIENCE}

    def build(self) -> dict[str, pd.DataFrame]:
        import numpy as np
        import pandas as pd

        cfg = checked_competition()
        metric = metric_for(cfg.metric, cfg.problem_type)
        trains = self.requires()["trains"]
        check_same_split(trains)
        oofs = [task.load("oof") for task in trains]
        first = oofs[0]
        columns = [c for c in first.columns if c not in (cfg.id_column, cfg.target_column, "fold")]
        scored = first["fold"].to_numpy() >= 0  # rows no fold validates (time folds) choose and score nothing
        fold = first["fold"].to_numpy()[scored]
        y = Train(model=trains[0].model).target()[0][scored]
        ranks = metric.name == "roc_auc"
        oof = np.stack([_ranked(o[columns].to_numpy()[scored], ranks) for o in oofs])
        tests = [task.load("test") for task in trains]
        test = np.stack([_ranked(t[columns].to_numpy(), ranks) for t in tests])

        weights = greedy_weights(oof, y, metric)
        blended = np.tensordot(weights, oof, axes=1)
        in_sample = [float(metric.score(y[fold == k], _squeeze(blended[fold == k]))) for k in range(cfg.n_folds)]
        nested_oof = np.zeros_like(blended)
        for k in range(cfg.n_folds):
            w = greedy_weights(oof[:, fold != k], y[fold != k], metric)
            nested_oof[fold == k] = np.tensordot(w, oof[:, fold == k], axes=1)
        nested = [float(metric.score(y[fold == k], _squeeze(nested_oof[fold == k]))) for k in range(cfg.n_folds)]
        names = [task.model for task in trains]
        self.facts.update(
            metric=metric.name,
            greater_is_better=metric.greater_is_better,
            cv_score=float(metric.score(y, _squeeze(nested_oof))),
            fold_scores=nested,
            model="blend",
            features=trains[0].manifest()["facts"]["features"],
            cv_score_in_sample=float(metric.score(y, _squeeze(blended))),
            model_cv_scores={n: t.manifest()["facts"]["cv_score"] for n, t in zip(names, trains, strict=True)},
            weights=dict(zip(names, weights.tolist(), strict=True)),
            components={n: t.task_hash() for n, t in zip(names, trains, strict=True)},
            classes=trains[0].manifest()["facts"]["classes"],
        )
        return {
            "oof": pd.concat(
                [
                    first[[cfg.id_column, cfg.target_column, "fold"]],
                    pd.DataFrame(_all_rows(nested_oof, scored), columns=columns),
                ],
                axis=1,
            ),
            "test": pd.concat(
                [tests[0][[cfg.id_column]], pd.DataFrame(np.tensordot(weights, test, axes=1), columns=columns)], axis=1
            ),
            "weights": pd.DataFrame({"model": names, "weight": weights}),
            "scores": pd.DataFrame({"fold": range(cfg.n_folds), "in_sample": in_sample, "nested": nested}),
        }


def check_same_split(trains: list[Train]) -> None:
    """Stop when the models were not trained on the same Split result (their manifests name it)."""
    seen: dict[str, str] = {}
    for task in trains:
        upstream = task.manifest()["upstream"]
        split = next(hash_ for task_id, hash_ in upstream.items() if task_id.startswith("Split"))
        seen[task.model] = split
    if len(set(seen.values())) > 1:
        shown = ", ".join(f"{name}: Split {hash_[:8]}" for name, hash_ in seen.items())
        raise ConfigError(f"blend: the models were trained on different Split results ({shown}); retrain them")


def greedy_weights(oof: np.ndarray, y: np.ndarray, metric: Metric) -> np.ndarray:
    """Non-negative weights summing to 1 (multiples of 1/STEPS): at each step add the model that
    most improves the blend, keep the best step's weights. The first step picks the best single
    model, so the blend's in-sample score is never worse than it."""
    import numpy as np

    sign = 1.0 if metric.greater_is_better else -1.0
    counts = np.zeros(len(oof))
    total = np.zeros_like(oof[0])
    best, best_counts, best_step = -np.inf, counts.copy(), 0
    for step in range(1, STEPS + 1):
        scores = [sign * float(metric.score(y, _squeeze((total + oof[m]) / step))) for m in range(len(oof))]
        chosen = int(np.argmax(scores))
        counts[chosen] += 1
        total = total + oof[chosen]
        if scores[chosen] > best + 1e-12:
            best, best_counts, best_step = scores[chosen], counts.copy(), step
        elif step - best_step >= PATIENCE:
            break
    return best_counts / best_counts.sum()


def _all_rows(prediction: np.ndarray, scored: np.ndarray) -> np.ndarray:
    """Predictions of the scored rows placed among all train rows (NaN for the others)."""
    import numpy as np

    full = np.full((len(scored), prediction.shape[1]), np.nan)
    full[scored] = prediction
    return full


def _ranked(prediction: np.ndarray, ranks: bool) -> np.ndarray:
    """Predictions as ranks scaled to [0, 1] (for roc_auc, where only the order counts), else as they are."""
    if not ranks:
        return prediction
    from scipy.stats import rankdata

    return (rankdata(prediction, axis=0) - 1) / max(len(prediction) - 1, 1)


def _squeeze(prediction: np.ndarray) -> np.ndarray:
    return prediction[:, 0] if prediction.ndim == 2 and prediction.shape[1] == 1 else prediction
