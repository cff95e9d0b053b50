"""hgb: scikit-learn's HistGradientBoosting, the default model (native categories and missing values)."""

from __future__ import annotations

from typing import Any

import luigi.configuration

from ..pipeline import Model, config


class HGB(Model):
    """Early stopping, when on (scikit-learn's default above 10,000 rows), holds out a share of the
    fitting rows (`validation_fraction`), never the fold being scored."""

    name = "hgb"

    def params(self) -> dict[str, Any]:
        # [train] model_params is hgb's older home; [model.hgb] params wins when both are set.
        if luigi.configuration.get_config().has_option("model.hgb", "params"):
            return super().params()
        return dict(config.train().model_params)

    def estimator(self, problem_type: str, params: dict[str, Any], seed: int, threads: int):
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        cls = HistGradientBoostingRegressor if problem_type == "regression" else HistGradientBoostingClassifier
        return cls(**{"categorical_features": "from_dtype", "random_state": seed, **params})

    def search(self, trial) -> dict[str, Any]:
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 8, 128, log=True),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 5, 100, log=True),
            "l2_regularization": trial.suggest_float("l2_regularization", 1e-6, 10.0, log=True),
        }
