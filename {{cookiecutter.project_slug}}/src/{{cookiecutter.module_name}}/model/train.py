"""Train: K-fold cross-validation on the registered features, out-of-fold and test predictions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..cache import CachedTask
from ..config import checked_competition, train
from ..data.ingest import Ingest
from ..data.split import Split
from ..errors import DataError
from ..features import FEATURES
from .metrics import metric_for

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

STACKED_ROWS = 200_000  # rows per prediction call when measuring permutation importance


class Train(CachedTask):
    """HistGradientBoosting (handles missing values and categories) fit once per fold.

    Writes `oof` (id, target, fold and the prediction of the model that did not see the row), `test`
    (test predictions averaged over the fold models), `scores` (the CV score per fold) and
    `importance` (permutation importance of each column on the held-out rows); the manifest's
    facts hold the overall CV score.
    """

    def requires(self) -> dict[str, Any]:
        return {"data": Ingest(), "split": Split(), "features": [feature() for feature in FEATURES]}

    def settings(self) -> dict[str, Any]:
        cfg = checked_competition()
        return {
            "problem_type": cfg.problem_type,
            "metric": metric_for(cfg.metric, cfg.problem_type).name,
            "seed": cfg.seed,
            "model_params": dict(train().model_params),
            "importance_repeats": train().importance_repeats,
        }

    def prediction_columns(self, classes: list) -> list[str]:
        if checked_competition().problem_type == "multiclass":
            return [str(label) for label in classes]
        return ["prediction"]

    def build(self) -> dict[str, pd.DataFrame]:
        import numpy as np
        import pandas as pd

        cfg = checked_competition()
        metric = metric_for(cfg.metric, cfg.problem_type)
        rows = Ingest().load("train", columns=[cfg.id_column, cfg.target_column])
        fold = Split().load("folds", columns=["fold"])["fold"].to_numpy()
        x_train, x_test, made_by = self.feature_matrix()

        if cfg.problem_type == "regression":
            classes: list = []
            y = rows[cfg.target_column].to_numpy(dtype="float64")
        else:
            classes = sorted(rows[cfg.target_column].unique().tolist())
            y = pd.Categorical(rows[cfg.target_column], categories=classes).codes.astype("int64")

        columns = self.prediction_columns(classes)
        oof = np.zeros((len(y), len(columns)))
        test = np.zeros((len(x_test), len(columns)))
        fold_scores, importance = [], []
        for k in range(cfg.n_folds):
            fit, held_out = fold != k, fold == k
            model = self.model().fit(x_train[fit], y[fit])
            oof[held_out] = self.predict(model, x_train[held_out])
            test += self.predict(model, x_test) / cfg.n_folds
            fold_scores.append(float(metric.score(y[held_out], _squeeze(oof[held_out]))))
            importance.append(self.permutation_importance(model, x_train[held_out], y[held_out], fold_scores[-1], k))

        cv = float(metric.score(y, _squeeze(oof)))
        self.facts.update(
            metric=metric.name,
            cv_score=cv,
            fold_scores=fold_scores,
            greater_is_better=metric.greater_is_better,
            classes=[_plain(c) for c in classes],
            features=[feature.__name__ for feature in FEATURES],
            n_columns=x_train.shape[1],
        )
        test_ids = Ingest().load("test", columns=[cfg.id_column])
        return {
            "oof": pd.concat([rows.assign(fold=fold), pd.DataFrame(oof, columns=columns)], axis=1),
            "test": pd.concat([test_ids, pd.DataFrame(test, columns=columns)], axis=1),
            "scores": pd.DataFrame({"fold": range(cfg.n_folds), metric.name: fold_scores}),
            "importance": self.importance_table(importance, made_by),
        }

    def permutation_importance(self, model, x: pd.DataFrame, y: np.ndarray, score: float, fold: int) -> pd.DataFrame:
        """How much one fold's score worsens when a column's values are shuffled among its held-out
        rows (positive: the model uses the column). The model is not refit, and shuffled copies are
        stacked into few large predictions (at most STACKED_ROWS rows each), which keeps it cheap."""
        import numpy as np
        import pandas as pd

        cfg = checked_competition()
        metric = metric_for(cfg.metric, cfg.problem_type)
        sign = 1.0 if metric.greater_is_better else -1.0
        rng = np.random.default_rng([cfg.seed, fold])
        jobs = [(repeat, column) for repeat in range(train().importance_repeats) for column in x.columns]
        per_call = max(1, STACKED_ROWS // max(len(x), 1))
        drops = []
        for start in range(0, len(jobs), per_call):
            copies = []
            for _, column in jobs[start : start + per_call]:
                shuffled = x.copy()
                shuffled[column] = pd.Series(x[column].array.take(rng.permutation(len(x))), index=x.index)
                copies.append(shuffled)
            predicted = self.predict(model, pd.concat(copies, ignore_index=True))
            for i in range(len(copies)):
                part = _squeeze(predicted[i * len(x) : (i + 1) * len(x)])
                drops.append(sign * (score - float(metric.score(y, part))))
        return pd.DataFrame({"column": [c for _, c in jobs], "repeat": [r for r, _ in jobs], "drop": drops})

    def importance_table(self, per_fold: list[pd.DataFrame], made_by: dict[str, str]) -> pd.DataFrame:
        """Mean and spread of each column's importance over folds and repeats, most important first,
        with the feature task that made the column (made_by: column -> task)."""
        import pandas as pd

        drops = pd.concat(per_fold, ignore_index=True)
        table = drops.groupby("column", sort=False)["drop"].agg(importance="mean", std="std").reset_index()
        table.insert(1, "feature", table["column"].map(made_by).astype("string"))
        return table.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)

    def feature_matrix(self) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
        """The registered features side by side, train and test, rows in Ingest's order, and the
        feature task that made each column."""
        import pandas as pd

        id_column = checked_competition().id_column
        parts: dict[str, list[pd.DataFrame]] = {"train": [], "test": []}
        seen: dict[str, str] = {}
        for feature in FEATURES:
            task = feature()
            for part in parts:
                table = task.load(part).drop(columns=[id_column])
                parts[part].append(table)
            for column in table.columns:
                if column in seen:
                    raise DataError(f"features {seen[column]} and {task.task_family} both make column {column!r}")
                seen[column] = task.task_family
                if not (
                    pd.api.types.is_numeric_dtype(table[column]) or isinstance(table[column].dtype, pd.CategoricalDtype)
                ):
                    raise DataError(
                        f"feature {task.task_family} column {column!r} has dtype {table[column].dtype}; "
                        "features must be numbers or categories"
                    )
        if not seen:
            raise DataError("no feature columns: FEATURES is empty or every feature made no columns")
        return pd.concat(parts["train"], axis=1), pd.concat(parts["test"], axis=1), seen

    def model(self):
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        cfg = checked_competition()
        regression = cfg.problem_type == "regression"
        estimator = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
        params = {"categorical_features": "from_dtype", "random_state": cfg.seed, **dict(train().model_params)}
        return estimator(**params)

    def predict(self, model, x: pd.DataFrame) -> np.ndarray:
        problem_type = checked_competition().problem_type
        if problem_type == "regression":
            return model.predict(x)[:, None]
        proba = model.predict_proba(x)
        return proba[:, 1:] if problem_type == "binary" else proba


def _squeeze(prediction: np.ndarray) -> np.ndarray:
    return prediction[:, 0] if prediction.shape[1] == 1 else prediction


def _plain(value: Any) -> Any:
    """A class label as JSON can hold it (numpy scalars become Python ones)."""
    return value.item() if hasattr(value, "item") else value
