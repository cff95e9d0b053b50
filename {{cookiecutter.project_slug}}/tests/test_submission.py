"""make_submission and validate: every layout of sample_submission.csv the data contract allows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.module_name }}.pipeline.errors import DataError
from {{ cookiecutter.module_name }}.pipeline.training.submission import make_submission, validate

IDS = [3, 1, 2]


def predictions(**columns: list[float]) -> pd.DataFrame:
    """Train's test predictions, in another row order than the sample's."""
    return pd.DataFrame({"id": [1, 2, 3], **columns})


def test_binary_single_column_gets_positive_class_probability():
    """Binary, one prediction column: P(positive class), in the sample's row order."""
    sample = pd.DataFrame({"id": IDS, "target": 0})
    made = make_submission(sample, predictions(prediction=[0.1, 0.2, 0.3]), "id", "binary", [0, 1])
    assert made["id"].tolist() == IDS
    assert made["target"].tolist() == [0.3, 0.1, 0.2]


def test_binary_class_columns_get_both_probabilities():
    """Binary with one column per class: the positive class's column gets p, the other 1 - p."""
    sample = pd.DataFrame({"id": IDS, "yes": 0.5, "no": 0.5})
    made = make_submission(sample, predictions(prediction=[0.1, 0.2, 0.3]), "id", "binary", ["no", "yes"])
    assert made["yes"].tolist() == [0.3, 0.1, 0.2]
    np.testing.assert_allclose(made["no"], [0.7, 0.9, 0.8])


def test_multiclass_class_columns_follow_the_sample_column_order():
    """Multiclass with one column per class: each class's probability under its own name."""
    sample = pd.DataFrame({"id": IDS, "c": 0.0, "a": 0.0, "b": 0.0})
    probabilities = predictions(a=[0.6, 0.2, 0.1], b=[0.3, 0.5, 0.1], c=[0.1, 0.3, 0.8])
    made = make_submission(sample, probabilities, "id", "multiclass", ["a", "b", "c"])
    assert list(made.columns) == ["id", "c", "a", "b"]
    assert made["c"].tolist() == [0.8, 0.1, 0.3]
    assert made["a"].tolist() == [0.1, 0.6, 0.2]


def test_multiclass_single_column_gets_the_most_likely_label():
    """Multiclass with one prediction column: the label of the most probable class."""
    sample = pd.DataFrame({"id": IDS, "label": "a"})
    probabilities = predictions(a=[0.6, 0.2, 0.1], b=[0.3, 0.5, 0.1], c=[0.1, 0.3, 0.8])
    made = make_submission(sample, probabilities, "id", "multiclass", ["a", "b", "c"])
    assert made["label"].tolist() == ["c", "a", "b"]


def test_regression_gets_the_value():
    sample = pd.DataFrame({"id": IDS, "price": 0.0})
    made = make_submission(sample, predictions(prediction=[10.0, 20.0, 30.0]), "id", "regression", [])
    assert made["price"].tolist() == [30.0, 10.0, 20.0]


def test_columns_that_are_neither_one_nor_the_classes_are_refused():
    """Two prediction columns that are not the classes: a DataError naming sample_submission.csv."""
    sample = pd.DataFrame({"id": IDS, "x": 0.0, "y": 0.0})
    with pytest.raises(DataError, match=r"sample_submission\.csv"):
        make_submission(sample, predictions(prediction=[0.1, 0.2, 0.3]), "id", "binary", [0, 1])


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (lambda s: s.assign(target=[0.1, np.nan, 0.3]), "missing values"),
        (lambda s: s.assign(target=[0.1, np.inf, 0.3]), "infinite values"),
        (lambda s: s.iloc[::-1].reset_index(drop=True), "row order"),
        (lambda s: s.iloc[:2], "row order"),
        (lambda s: s.rename(columns={"target": "other"}), "columns"),
    ],
    ids=["nan", "inf", "order", "rows", "columns"],
)
def test_validate_refuses_a_broken_submission(broken, message: str):
    """validate stops a submission with NaN, inf, other ids, row order or columns, naming the file."""
    sample = pd.DataFrame({"id": IDS, "target": [0.5, 0.5, 0.5]})
    validate(sample.copy(), sample, "id", "data/raw/sample_submission.csv")
    with pytest.raises(DataError, match=message):
        validate(broken(sample.copy()), sample, "id", "data/raw/sample_submission.csv")
