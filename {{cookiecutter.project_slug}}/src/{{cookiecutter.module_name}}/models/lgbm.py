"""lgbm: LightGBM, native categories from the pandas category dtype."""

from __future__ import annotations

from typing import Any, ClassVar

from ..pipeline import Model, imported


class LGBM(Model):
    """A fixed number of rounds (`n_estimators`): no early stopping, so the scored fold is never
    looked at while fitting."""

    name = "lgbm"
    defaults: ClassVar[dict[str, Any]] = {"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 31, "verbose": -1}

    def estimator(self, problem_type: str, params: dict[str, Any], seed: int, threads: int):
        lightgbm = imported("lightgbm", f"model {self.name!r}")
        cls = lightgbm.LGBMRegressor if problem_type == "regression" else lightgbm.LGBMClassifier
        return cls(**{"random_state": seed, "n_jobs": threads, **params})

    def search(self, trial) -> dict[str, Any]:
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 8, 256, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 5, 100, log=True),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-6, 10.0, log=True),
        }
