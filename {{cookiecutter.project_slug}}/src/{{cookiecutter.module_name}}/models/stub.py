"""A model to copy: save as models/<name>.py, write `estimator()`, and list the class in MODELS
(models/__init__.py). Its parameters then live in luigi.cfg:

    [model.mymodel]
    params = {"n_estimators": 500}

Rules that keep a model honest and fast:
- Fit only on what `fit` is given: Train passes the fitting rows of one fold. Early stopping must
  hold out part of those rows (or use a fixed number of rounds), never the fold being scored.
- Use `seed` for every random choice, so the same seed gives the same predictions.
- Use at most `threads` threads (n_jobs / nthread): Train runs folds side by side.
- The matrix has float64 numbers (NaN when missing) and pandas categoricals.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..pipeline import Model


class MyModel(Model):
    """What the model is and why it is here."""

    name = "mymodel"
    defaults: ClassVar[dict[str, Any]] = {"n_estimators": 300}

    def estimator(self, problem_type: str, params: dict[str, Any], seed: int, threads: int):
        from sklearn.compose import make_column_selector, make_column_transformer
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OrdinalEncoder

        # A random forest takes numbers (NaN included) but not categories: code them as integers.
        codes = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1)
        columns = make_column_transformer(
            (codes, make_column_selector(dtype_include="category")), remainder="passthrough"
        )
        cls = RandomForestRegressor if problem_type == "regression" else RandomForestClassifier
        return make_pipeline(columns, cls(random_state=seed, n_jobs=threads, **params))
