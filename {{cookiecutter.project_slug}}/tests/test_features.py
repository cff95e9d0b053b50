"""Feature code, called in-process on small frames: the stub, target encoding, category codes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import MULTICLASS_LABELS, Competition, tiny_dataset

from {{ cookiecutter.module_name }}.features.categorical import (
    MAX_CATEGORIES,
    CategoryCodes,
)
from {{ cookiecutter.module_name }}.features.stub import RatioFeature
from {{ cookiecutter.module_name }}.features.target_encoding import (
    SMOOTHING,
    TargetEncoding,
)

# --- the stub ---------------------------------------------------------------------------------


class SizePerCount(RatioFeature):
    """The stub as a user fills it in: pointed at two numeric columns of the tiny dataset."""

    def columns(self) -> list[str]:
        return ["f_size", "f_count"]


def test_stub_ratio_values_and_zero_denominators():
    """The stub, once pointed at real columns, returns numerator / denominator with df's index;
    a zero or missing denominator (or a missing numerator) gives NaN, never inf."""
    df = pd.DataFrame(
        {"f_size": [6.0, 1.0, 0.0, np.nan, -4.0, 3.0], "f_count": [3, 0, 5, 2, 2, np.nan]},
        index=[10, 11, 12, 13, 14, 15],
    )
    made = SizePerCount().make(df)
    assert list(made.columns) == ["ratio"]
    assert list(made.index) == list(df.index)
    np.testing.assert_array_equal(made["ratio"].to_numpy(), [2.0, np.nan, 0.0, np.nan, -2.0, np.nan])


def test_stub_on_the_tiny_dataset_splits_train_and_test_rows(competition: Competition):
    """Through the base class's make_train_test (as the pipeline calls it), the stub returns
    one row per train row and per test row, each the ratio of its own row."""
    train, test, _ = tiny_dataset(competition, n_train=120, n_test=30)
    columns = [competition.id_column, "f_size", "f_count"]
    assert (train["f_count"] == 0).any(), "the tiny dataset should hold zero denominators"
    made_train, made_test = SizePerCount().make_train_test(train[columns], test[columns])
    for made, rows in ((made_train, train), (made_test, test)):
        assert len(made) == len(rows)
        expected = rows["f_size"] / rows["f_count"].where(rows["f_count"] != 0)
        np.testing.assert_allclose(made["ratio"].to_numpy(), expected.to_numpy(), equal_nan=True)
        assert made.loc[(rows["f_count"] == 0).to_numpy(), "ratio"].isna().all()
        assert np.isfinite(made["ratio"].dropna()).all()


# --- target encoding --------------------------------------------------------------------------


class ColorTargetEncoding(TargetEncoding):
    """TargetEncoding of one string column, without reading Ingest's manifest."""

    def columns(self) -> list[str]:
        return ["f_color"]


def as_target(quantity, problem_type: str) -> pd.Series:
    """Targets whose encoded quantity is `quantity` (0/1): binary 0/1, regression 0.0/1.0,
    multiclass 'beta' for 1 and alternately 'alpha' / 'gamma' for 0 (encoded as f_color_te_beta)."""
    quantity = list(quantity)
    if problem_type == "binary":
        return pd.Series(quantity, dtype="int64")
    if problem_type == "regression":
        return pd.Series(quantity, dtype="float64")
    zeros = iter(["alpha", "gamma"] * len(quantity))
    return pd.Series(["beta" if q else next(zeros) for q in quantity], dtype=object)


def encoded_column(problem_type: str) -> str:
    return "f_color_te_beta" if problem_type == "multiclass" else "f_color_te"


def flipped(value, problem_type: str):
    """Another target value for a row: the other class, the next label, or a shifted number."""
    if problem_type == "binary":
        return 1 - value
    if problem_type == "multiclass":
        return MULTICLASS_LABELS[(MULTICLASS_LABELS.index(value) + 1) % len(MULTICLASS_LABELS)]
    return value + 10.0


def test_target_encoding_matches_hand_computed_values(project_competition: Competition):
    """A train row is encoded from the other folds only: (sum + SMOOTHING * prior) / (count + SMOOTHING)
    with the other folds' sum, count and mean; test rows use all of train, unseen or missing
    categories get the prior."""
    comp = project_competition
    # fold 0: a:1, a:0, b:1, b:1    fold 1: a:1, a:1, a:0, b:0
    quantity = [1, 0, 1, 1, 1, 1, 0, 0]
    train = pd.DataFrame(
        {
            comp.id_column: range(1, 9),
            "f_color": ["a", "a", "b", "b", "a", "a", "a", "b"],
            comp.target_column: as_target(quantity, comp.problem_type),
            "fold": [0, 0, 0, 0, 1, 1, 1, 1],
        }
    )
    test = pd.DataFrame({comp.id_column: [11, 12, 13, 14], "f_color": ["a", "b", "z", None]})
    made_train, made_test = ColorTargetEncoding().make_train_test(train, test)

    s = SMOOTHING
    expected_train = [
        (2 + s * 2 / 4) / (3 + s),  # fold 0, a: fold 1's a rows are 1, 1, 0; fold 1's mean is 2/4
        (2 + s * 2 / 4) / (3 + s),
        (0 + s * 2 / 4) / (1 + s),  # fold 0, b: fold 1's b row is 0
        (0 + s * 2 / 4) / (1 + s),
        (1 + s * 3 / 4) / (2 + s),  # fold 1, a: fold 0's a rows are 1, 0; fold 0's mean is 3/4
        (1 + s * 3 / 4) / (2 + s),
        (1 + s * 3 / 4) / (2 + s),
        (2 + s * 3 / 4) / (2 + s),  # fold 1, b: fold 0's b rows are 1, 1
    ]
    prior = 5 / 8
    expected_test = [(3 + s * prior) / (5 + s), (2 + s * prior) / (3 + s), prior, prior]
    column = encoded_column(comp.problem_type)
    assert made_train[column].to_numpy() == pytest.approx(expected_train)
    assert made_test[column].to_numpy() == pytest.approx(expected_test)
    n_columns = len(MULTICLASS_LABELS) if comp.problem_type == "multiclass" else 1
    assert list(made_train.columns) == list(made_test.columns)
    assert len(made_train.columns) == n_columns
    assert list(made_train.index) == list(train.index)


def leak_frames(comp: Competition) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(3)
    rows = 30
    if comp.problem_type == "binary":
        target = pd.Series(rng.integers(0, 2, rows), dtype="int64")
    elif comp.problem_type == "multiclass":
        target = pd.Series(rng.choice(MULTICLASS_LABELS, rows), dtype=object)
    else:
        target = pd.Series(rng.normal(5.0, 2.0, rows).round(3))
    train = pd.DataFrame(
        {
            comp.id_column: np.arange(rows) + 1,
            "f_color": rng.choice(["a", "b", "c"], rows).astype(object),
            comp.target_column: target,
            "fold": np.arange(rows) % 3,
        }
    )
    train.loc[[4, 17], "f_color"] = None
    test = pd.DataFrame({comp.id_column: [101, 102, 103, 104], "f_color": ["a", "b", "c", None]})
    return train, test


def test_target_encoding_is_out_of_fold(project_competition: Competition):
    """Changing one train row's target leaves its own encoding (and its whole fold's) unchanged,
    and changes the encoding of the rows of the same category in the other folds and in test."""
    comp = project_competition
    train, test = leak_frames(comp)
    if comp.classification:
        assert train[comp.target_column].value_counts().min() >= 2  # a flip keeps every class
    feature = ColorTargetEncoding()
    base_train, base_test = feature.make_train_test(train, test)
    assert base_train.notna().all().all() and base_test.notna().all().all()

    keys_train = train["f_color"].fillna("<missing>")
    keys_test = test["f_color"].fillna("<missing>")
    for row in range(len(train)):
        changed = train.copy()
        changed.loc[row, comp.target_column] = flipped(train.loc[row, comp.target_column], comp.problem_type)
        made_train, made_test = feature.make_train_test(changed, test)
        assert list(made_train.columns) == list(base_train.columns)

        same_fold = (train["fold"] == train.loc[row, "fold"]).to_numpy()
        pd.testing.assert_frame_equal(made_train[same_fold], base_train[same_fold], check_exact=True)
        others = ~same_fold & (keys_train == keys_train[row]).to_numpy()
        assert others.any()
        moved = (made_train[others] != base_train[others]).any(axis=1)
        assert moved.all(), f"row {row}'s target did not reach rows {list(moved[~moved].index)} of other folds"
        same_key_test = (keys_test == keys_train[row]).to_numpy()
        assert (made_test[same_key_test] != base_test[same_key_test]).any(axis=1).all()


# --- category codes ---------------------------------------------------------------------------


class ColorCodes(CategoryCodes):
    def columns(self) -> list[str]:
        return ["f_color"]


class CodeCounts(CategoryCodes):
    def columns(self) -> list[str]:
        return ["f_code"]


def test_category_codes_are_the_same_in_train_and_test(competition: Competition):
    """Train and test get one categorical dtype holding the values of both files, so a value has
    the same code in each; missing stays missing."""
    colors = ["red", "green", None, "only_train", "red"]
    train = pd.DataFrame({competition.id_column: [1, 2, 3, 4, 5], "f_color": colors})
    test = pd.DataFrame({competition.id_column: [6, 7, 8], "f_color": ["only_test", "red", None]})
    made_train, made_test = ColorCodes().make_train_test(train, test)

    assert list(made_train.columns) == list(made_test.columns) == ["f_color"]
    assert isinstance(made_train["f_color"].dtype, pd.CategoricalDtype)
    assert made_train["f_color"].dtype == made_test["f_color"].dtype
    assert set(made_train["f_color"].cat.categories) == {"red", "green", "only_train", "only_test"}
    red_codes = {
        int(code)
        for made, rows in ((made_train, train), (made_test, test))
        for code in made["f_color"].cat.codes[(rows["f_color"] == "red").to_numpy()]
    }
    assert len(red_codes) == 1
    for made, rows in ((made_train, train), (made_test, test)):
        present = rows["f_color"].notna().to_numpy()
        assert made["f_color"].notna().tolist() == present.tolist()
        assert made["f_color"][present].astype(str).tolist() == rows["f_color"][present].tolist()


def test_many_distinct_strings_become_counts_over_train_and_test(competition: Competition):
    """A column with more than MAX_CATEGORIES distinct values becomes `<column>_count`, the
    number of rows (train and test together) holding each value, in both files."""
    distinct = MAX_CATEGORIES + 20
    values = [f"v{i}" for i in range(distinct)]
    train = pd.DataFrame({competition.id_column: range(distinct), "f_code": values})
    test = pd.DataFrame({competition.id_column: range(distinct, distinct + 3), "f_code": ["v0", "v0", "new"]})
    made_train, made_test = CodeCounts().make_train_test(train, test)

    assert list(made_train.columns) == list(made_test.columns) == ["f_code_count"]
    assert made_train["f_code_count"].tolist() == [3.0] + [1.0] * (distinct - 1)
    assert made_test["f_code_count"].tolist() == [3.0, 3.0, 1.0]
