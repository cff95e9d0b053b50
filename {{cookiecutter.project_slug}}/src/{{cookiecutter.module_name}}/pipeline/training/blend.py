"""Blend: non-negative weights summing to 1 over trained models' out-of-fold predictions.

Every model's out-of-fold predictions come from the one Split, so they are comparable and the
blend leaks nothing; the honest CV is nested: each fold is scored with weights chosen on the
other folds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import luigi

from ..config import blend, checked_competition, key_columns, target_columns
from ..data.ingest import Ingest
from ..data.split import Split
from ..errors import ConfigError
from ..runs import run_id
from ..storage.cache import CachedTask
from .metrics import Metric, train_groups
from .train import Train, _rows

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

STEPS = 100  # greedy selection steps at most: weights are multiples of 1/steps
PATIENCE = 10  # steps without a better blend before the selection stops
LEVEL2 = {"C": 1.0, "alpha": 1.0}  # the stack's regularisation: LogisticRegression's C, Ridge's alpha
CLIP = 1e-6  # probabilities are clipped to [CLIP, 1 - CLIP] before their logits go to the level-2 model


class Blend(CachedTask):
    """Weights over the models of `[blend] models` (or `make blend MODELS="hgb lgbm"`), chosen by
    greedy forward selection with replacement (Caruana et al. 2004) on the CV metric; for roc_auc
    the models' predictions are ranks first. Writes `oof`, `test`, `weights` and `scores` (per fold:
    in-sample and nested); the facts hold both CV figures (`cv_score` is the nested one) and the
    component Train hashes."""

    models = luigi.ListParameter(default=[])

    def names(self) -> list[str]:
        from ..registry import MODELS

        names = list(self.models) or list(blend().models) or [cls.name for cls in MODELS]
        if len(names) < 2:
            raise ConfigError("luigi.cfg [blend] models: list two or more trained models to blend")
        return names

    def requires(self) -> dict[str, Any]:
        return {"data": Ingest(), "split": Split(), "trains": [Train(model=name) for name in self.names()]}

    def settings(self) -> dict[str, Any]:
        method = blend().method
        level2 = {"steps": STEPS, "patience": PATIENCE} if method == "weights" else {"level2": LEVEL2}
        return {"models": self.names(), "method": method, **level2}

    def build(self) -> dict[str, pd.DataFrame]:
        import numpy as np
        import pandas as pd

        from ..registry import scoring

        cfg = checked_competition()
        if len(target_columns()) > 1:
            raise ConfigError(
                "make blend blends models of one target: luigi.cfg [competition] target_column names several"
            )
        metric = scoring()
        trains = self.requires()["trains"]
        check_same_split(trains)
        oofs = [task.load("oof") for task in trains]
        first = oofs[0]
        keys = key_columns()
        columns = [c for c in first.columns if c not in (*keys, cfg.target_column, "fold")]
        scored = first["fold"].to_numpy() >= 0  # rows no fold validates (time folds) choose and score nothing
        fold = first["fold"].to_numpy()[scored]
        y = Train(model=trains[0].model).target()[0][scored]
        groups = _rows(train_groups(), scored)
        ranks = metric.name == "roc_auc"
        oofs_raw = np.stack([o[columns].to_numpy()[scored] for o in oofs])
        tests = [task.load("test") for task in trains]
        tests_raw = np.stack([t[columns].to_numpy() for t in tests])
        oof = np.stack([_ranked(o, ranks) for o in oofs_raw])
        test = np.stack([_ranked(t, ranks) for t in tests_raw])

        names = [task.model for task in trains]
        if blend().method == "stack":
            combined = stacked(oofs_raw, tests_raw, y, fold, cfg.problem_type, cfg.n_folds)
        else:
            combined = weighted(oof, test, y, fold, metric, cfg.n_folds, groups)
        blended, nested_oof, blended_test, weights, tables = combined
        if "coefficients" in tables:  # its columns by model and prediction column, not by position
            shown = {f"{m}:{c}": f"{name}:{column}" for m, name in enumerate(names) for c, column in enumerate(columns)}
            tables["coefficients"] = tables["coefficients"].rename(columns=shown)
        in_sample, nested = (
            [metric(y[fold == k], _squeeze(p[fold == k]), _rows(groups, fold == k)) for k in range(cfg.n_folds)]
            for p in (blended, nested_oof)
        )
        self.facts.update(
            metric=metric.name,
            greater_is_better=metric.greater_is_better,
            cv_score=metric(y, _squeeze(nested_oof), groups),
            fold_scores=nested,
            model="blend",
            features=trains[0].manifest()["facts"]["features"],
            cv_score_in_sample=metric(y, _squeeze(blended), groups),
            model_cv_scores={n: t.manifest()["facts"]["cv_score"] for n, t in zip(names, trains, strict=True)},
            method=blend().method,
            weights=dict(zip(names, weights.tolist(), strict=True)),
            components={n: t.task_hash() for n, t in zip(names, trains, strict=True)},
            component_runs={n: run_id(t.manifest()) for n, t in zip(names, trains, strict=True)},
            classes=trains[0].manifest()["facts"]["classes"],
        )
        return {
            "oof": pd.concat(
                [
                    first[[*keys, cfg.target_column, "fold"]],
                    pd.DataFrame(_all_rows(nested_oof, scored), columns=columns),
                ],
                axis=1,
            ),
            "test": pd.concat([tests[0][keys], pd.DataFrame(blended_test, columns=columns)], axis=1),
            "weights": pd.DataFrame({"model": names, "weight": weights}),
            "scores": pd.DataFrame({"fold": range(cfg.n_folds), "in_sample": in_sample, "nested": nested}),
            **tables,
        }


def weighted(
    oof: np.ndarray, test: np.ndarray, y: np.ndarray, fold: np.ndarray, metric: Metric, n_folds: int, groups=None
):
    """The weights method: greedy weights on all folds (the in-sample blend, and the test's), and
    per fold k weights chosen on the other folds applied to fold k (the nested blend). oof and test
    are (models, rows, columns); groups: the rows' groups for the metric, or None. Returns
    (in-sample oof, nested oof, test, weights, extra tables)."""
    import numpy as np

    weights = greedy_weights(oof, y, metric, groups)
    nested = np.zeros_like(oof[0])
    for k in range(n_folds):
        w = greedy_weights(oof[:, fold != k], y[fold != k], metric, _rows(groups, fold != k))
        nested[fold == k] = np.tensordot(w, oof[:, fold == k], axes=1)
    return np.tensordot(weights, oof, axes=1), nested, np.tensordot(weights, test, axes=1), weights, {}


def stacked(oof: np.ndarray, test: np.ndarray, y: np.ndarray, fold: np.ndarray, problem_type: str, n_folds: int):
    """The stack method: a level-2 model (logistic regression on the models' logits for
    classification, ridge regression on their predictions for regression) fit on the out-of-fold
    predictions. Nested: for each fold k, fit on the other folds' rows and predict fold k's, the
    folds of the Split. In-sample and test: one fit on every row. `weights` are each model's share
    of the absolute coefficients; the `coefficients` table holds them all."""
    import numpy as np
    import pandas as pd

    x, x_test = _level2_inputs(oof, problem_type), _level2_inputs(test, problem_type)
    n_classes = oof.shape[2] + 1 if problem_type == "binary" else oof.shape[2]
    nested = np.zeros_like(oof[0])
    for k in range(n_folds):
        model = _level2(problem_type).fit(x[fold != k], y[fold != k])
        nested[fold == k] = _level2_predict(model, x[fold == k], problem_type, n_classes)
    model = _level2(problem_type).fit(x, y)
    coefficients = np.atleast_2d(model.coef_)  # (outputs, models * columns)
    per_model = np.abs(coefficients).reshape(len(coefficients), len(oof), -1).sum(axis=(0, 2))
    weights = per_model / per_model.sum() if per_model.sum() > 0 else np.full(len(oof), 1 / len(oof))
    table = pd.DataFrame(coefficients, columns=[f"{m}:{c}" for m in range(len(oof)) for c in range(oof.shape[2])])
    table.insert(0, "intercept", np.atleast_1d(model.intercept_))
    in_sample = _level2_predict(model, x, problem_type, n_classes)
    return in_sample, nested, _level2_predict(model, x_test, problem_type, n_classes), weights, {"coefficients": table}


def _level2(problem_type: str):
    if problem_type == "regression":
        from sklearn.linear_model import Ridge

        return Ridge(alpha=LEVEL2["alpha"])
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=LEVEL2["C"], max_iter=1000)


def _level2_inputs(prediction: np.ndarray, problem_type: str) -> np.ndarray:
    """(models, rows, columns) -> (rows, models * columns): logits of the probabilities for
    classification, the predictions themselves for regression."""
    import numpy as np

    if problem_type != "regression":
        p = np.clip(prediction, CLIP, 1 - CLIP)
        prediction = np.log(p / (1 - p))
    return np.concatenate(list(prediction), axis=1)


def _level2_predict(model, x: np.ndarray, problem_type: str, n_classes: int) -> np.ndarray:
    """The level-2 model's predictions shaped as Train's: (rows, 1) for binary and regression,
    a column per class for multiclass (a class missing from the fitting rows gets 0)."""
    import numpy as np

    if problem_type == "regression":
        return model.predict(x)[:, None]
    proba = np.zeros((len(x), n_classes))
    proba[:, model.classes_] = model.predict_proba(x)
    return proba[:, 1:] if problem_type == "binary" else proba


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


def greedy_weights(oof: np.ndarray, y: np.ndarray, metric: Metric, groups=None) -> np.ndarray:
    """Non-negative weights summing to 1 (multiples of 1/STEPS): at each step add the model that
    most improves the blend, keep the best step's weights. The first step picks the best single
    model, so the blend's in-sample score is never worse than it."""
    import numpy as np

    sign = 1.0 if metric.greater_is_better else -1.0
    counts = np.zeros(len(oof))
    total = np.zeros_like(oof[0])
    best, best_counts, best_step = -np.inf, counts.copy(), 0
    for step in range(1, STEPS + 1):
        scores = [sign * metric(y, _squeeze((total + oof[m]) / step), groups) for m in range(len(oof))]
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
