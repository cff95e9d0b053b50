"""linear: a scikit-learn pipeline (impute, scale, one-hot of categories, then logistic or ridge
regression), a model unlike the trees that often helps a blend."""

from __future__ import annotations

from typing import Any, ClassVar

from ..pipeline import Model


class Linear(Model):
    """`params` go to LogisticRegression (classification) or Ridge (regression)."""

    name = "linear"
    defaults: ClassVar[dict[str, Any]] = {"C": 1.0, "max_iter": 1000}

    def estimator(self, problem_type: str, params: dict[str, Any], seed: int, threads: int):
        from sklearn.compose import make_column_selector, make_column_transformer
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression, Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        columns = make_column_transformer(
            (
                make_pipeline(SimpleImputer(add_indicator=True), StandardScaler()),
                make_column_selector(dtype_exclude="category"),
            ),
            (
                OneHotEncoder(handle_unknown="ignore", min_frequency=5, sparse_output=False),
                make_column_selector(dtype_include="category"),
            ),
        )
        if problem_type == "regression":
            params = {key: value for key, value in params.items() if key not in ("C", "max_iter")} or {"alpha": 1.0}
            return make_pipeline(columns, Ridge(random_state=seed, **params))
        return make_pipeline(columns, LogisticRegression(random_state=seed, **params))

    def search(self, trial) -> dict[str, Any]:
        return {"C": trial.suggest_float("C", 1e-3, 100.0, log=True)}
