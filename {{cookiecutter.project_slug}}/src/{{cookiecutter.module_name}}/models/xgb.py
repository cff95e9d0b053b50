"""xgb: XGBoost hist trees with native categories."""

from __future__ import annotations

from typing import Any, ClassVar

from ..pipeline import Model, imported


class XGB(Model):
    """A fixed number of rounds (`n_estimators`): no early stopping, so the scored fold is never
    looked at while fitting."""

    name = "xgb"
    defaults: ClassVar[dict[str, Any]] = {"n_estimators": 300, "learning_rate": 0.05, "max_depth": 6}

    def estimator(self, problem_type: str, params: dict[str, Any], seed: int, threads: int):
        xgboost = imported("xgboost", f"model {self.name!r}")
        cls = xgboost.XGBRegressor if problem_type == "regression" else xgboost.XGBClassifier
        fixed = {"random_state": seed, "n_jobs": threads, "tree_method": "hist", "enable_categorical": True}
        return cls(**{**fixed, **params})

    def search(self, trial) -> dict[str, Any]:
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "max_depth": trial.suggest_int("max_depth", 2, 10),
            "min_child_weight": trial.suggest_float("min_child_weight", 0.1, 20.0, log=True),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-6, 10.0, log=True),
        }
