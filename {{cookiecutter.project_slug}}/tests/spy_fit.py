"""One TrainFold built in this process, with spies on what its fits see (for test_models).

`python tests/spy_fit.py <model> <fold> <out.json>`, in an isolated pipeline's environment whose
Split and features are built, writes the `f_row` markers of the rows given to the estimator's
`fit`, of any `eval_set` given with them, and of the rows scikit-learn's HistGradientBoosting
holds out for its own early stopping.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import sklearn.ensemble._hist_gradient_boosting.gradient_boosting as hgb_module

MARKER = 1_000_000.0  # f_row = MARKER + row number: no other column of the tiny data comes near it


def markers(x) -> list[int]:
    """The row numbers in a feature matrix (a DataFrame, or the array a library made of it)."""
    if hasattr(x, "columns"):
        return (x["f_row"].to_numpy() - MARKER).astype(int).tolist()
    x = np.asarray(x, dtype="float64")
    (column,) = [c for c in range(x.shape[1]) if np.nanmin(x[:, c]) >= MARKER]
    return (x[:, column] - MARKER).astype(int).tolist()


class Spy:
    """An estimator that records what its fit is given, then fits the real one."""

    def __init__(self, estimator, seen: dict) -> None:
        self.estimator, self.seen = estimator, seen

    def fit(self, x, y, **kwargs):
        self.seen["fit"].append(markers(x))
        for x_eval, _ in kwargs.get("eval_set") or []:
            self.seen["eval_set"].append(markers(x_eval))
        self.seen["params"].append({k: repr(v) for k, v in self.estimator.get_params().items()})
        self.estimator.fit(x, y, **kwargs)
        return self

    def __getattr__(self, name):
        return getattr(self.estimator, name)


def main(model: str, fold: str, out: str) -> None:
    from {{ cookiecutter.module_name }}.pipeline.training.train import TrainFold

    seen: dict[str, list] = {"fit": [], "eval_set": [], "early_stopping": [], "params": []}
    split = hgb_module.train_test_split

    def spied_split(*arrays, **kwargs):
        parts = split(*arrays, **kwargs)
        seen["early_stopping"].append(markers(parts[1]))  # X_val: the rows early stopping scores
        return parts

    hgb_module.train_test_split = spied_split
    task = TrainFold(model=model, fold=int(fold))
    task.threads, task.facts = 1, {}  # what store() would set
    real = task.estimator
    task.estimator = lambda seed=None, threads=1: Spy(real(seed, threads), seen)
    task.build()
    with open(out, "w") as f:
        json.dump(seen, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
