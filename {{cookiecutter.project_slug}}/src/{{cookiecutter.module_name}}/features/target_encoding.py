"""Out-of-fold target encoding: how to learn from the target without leaking it."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ..pipeline import Feature, Ingest, checked_competition, target_columns

if TYPE_CHECKING:
    import pandas as pd

# Pulls the mean of rare categories towards the overall mean; counts as this many rows of it.
SMOOTHING = 10.0


class TargetEncoding(Feature):
    """Smoothed mean target per category of each string column.

    A train row's value comes only from the other folds' rows, so the model never sees a
    statistic that includes the row's own target; test rows use all of train.
    Classification encodes the rate of each class (binary: of the positive class).
    """

    uses_target: ClassVar[bool] = True

    def columns(self) -> list[str]:
        return Ingest().columns_of("category")

    def make_train_test(self, train: pd.DataFrame, test: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        import pandas as pd

        cfg = checked_competition()
        targets: dict[str, pd.Series] = {}
        several = len(target_columns()) > 1  # each target's columns named after it
        for target in target_columns():
            encoded = _target_columns(train[target], cfg.problem_type)
            targets.update({f"_{target}{suffix}" if several else suffix: values for suffix, values in encoded.items()})
        made_train, made_test = {}, {}
        for column in self.columns():
            keys_train = train[column].astype("string").fillna("<missing>")
            keys_test = test[column].astype("string").fillna("<missing>")
            for suffix, target in targets.items():
                name = f"{column}_te{suffix}"
                encoded = pd.Series(float("nan"), index=train.index)
                for fold in sorted(train["fold"].unique()):
                    inside = train["fold"] == fold
                    encoded[inside] = _encode(keys_train[~inside], target[~inside], keys_train[inside])
                made_train[name] = encoded
                made_test[name] = _encode(keys_train, target, keys_test)
        return pd.DataFrame(made_train, index=train.index), pd.DataFrame(made_test, index=test.index)


def _target_columns(target: pd.Series, problem_type: str) -> dict[str, pd.Series]:
    """The numeric series to average: the target itself, or one 0/1 indicator per class."""
    classes = sorted(target.unique())
    if problem_type == "regression":
        return {"": target.astype("float64")}
    if problem_type == "binary":
        return {"": (target == classes[-1]).astype("float64")}
    return {f"_{label}": (target == label).astype("float64") for label in classes}


def _encode(keys: pd.Series, target: pd.Series, apply_to: pd.Series) -> pd.Series:
    prior = target.mean()
    stats = target.groupby(keys.to_numpy()).agg(["sum", "count"])
    smoothed = (stats["sum"] + SMOOTHING * prior) / (stats["count"] + SMOOTHING)
    return apply_to.map(smoothed).astype("float64").fillna(prior).to_numpy()
