"""Metrics and submission formats, in this process: every built-in metric against a value computed by
hand, how luigi.cfg names them, and ranked files (order, ties, top_k)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.module_name }}.pipeline.errors import ConfigError, DataError
from {{ cookiecutter.module_name }}.pipeline.registry import METRICS, metric_named, scoring
from {{ cookiecutter.module_name }}.pipeline.training.submission import ranked_submission, validate

# Three groups of rows for the grouped metrics, in no order of group (rows are shuffled below):
# a: the relevant row is ranked 2nd; b: relevant rows ranked 1st and 3rd; c: nothing relevant.
GROUPS = ["a", "a", "a", "b", "b", "b", "c", "c"]
RELEVANT = [0, 1, 0, 1, 0, 1, 0, 0]
SCORES = [0.9, 0.5, 0.1, 0.2, 0.3, 0.8, 0.4, 0.6]
MULTICLASS = [[0.8, 0.2, 0.0], [0.1, 0.2, 0.7], [0.1, 0.5, 0.4], [0.0, 0.1, 0.9]]  # expected class 0.2, 1.6, 1.3, 1.9

CASES = [
    # name, y, prediction, groups, the value by hand
    ("roc_auc", [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], None, 3 / 4),  # 3 of 4 (positive, negative) pairs in order
    ("log_loss", [1, 0], [0.8, 0.4], None, -(math.log(0.8) + math.log(0.6)) / 2),
    ("accuracy", [0, 1, 1, 0], [0.2, 0.7, 0.4, 0.5], None, 2 / 4),
    ("f1_macro", [0, 0, 1, 1, 1], [0.1, 0.6, 0.7, 0.8, 0.2], None, (1 / 2 + 2 / 3) / 2),  # class 0: 1/2, class 1: 2/3
    # predictions rounded to [0, 1, 1, 2]: quadratic weights 1/4 for a class apart, observed 1/4 against 5/4 by chance
    ("qwk", [0, 1, 2, 2], [0.2, 1.4, 0.9, 2.9], None, 1 - 0.25 / 1.25),
    ("qwk", [0, 1, 2, 2], MULTICLASS, None, 7 / 11),  # expected classes rounded: [0, 2, 1, 2]
    ("rmse", [1, 2, 3], [1, 2, 5], None, math.sqrt(4 / 3)),
    ("rmsle", [0, math.e - 1], [math.e - 1, math.e - 1], None, math.sqrt(1 / 2)),
    ("mae", [1, 2, 3], [2, 2, 1], None, 1.0),
    ("r2", [1, 2, 3], [1, 2, 2], None, 1 - 1 / 2),
    ("map@1", RELEVANT, SCORES, GROUPS, (0 + 1 + 0) / 3),
    ("map@2", RELEVANT, SCORES, GROUPS, (1 / 2 + 1 / 2 + 0) / 3),  # b: one hit in 2, divided by min(2, 2)
    ("map@3", RELEVANT, SCORES, GROUPS, (1 / 2 + (1 + 2 / 3) / 2 + 0) / 3),
    ("ndcg@2", RELEVANT, SCORES, GROUPS, (1 / math.log2(3) + 1 / (1 + 1 / math.log2(3)) + 0) / 3),
]


@pytest.mark.parametrize(("name", "y", "prediction", "groups", "expected"), CASES, ids=[c[0] for c in CASES])
def test_every_built_in_metric_gives_the_value_computed_by_hand(name, y, prediction, groups, expected):
    """Each built-in metric, on rows small enough to score by hand (grouped ones with their rows shuffled,
    so that groups are found by value, not by position)."""
    order = np.random.default_rng(0).permutation(len(y))
    y, prediction = np.asarray(y)[order], np.asarray(prediction, dtype=float)[order]
    groups = None if groups is None else np.asarray(groups)[order]
    types = next(m for m in METRICS if m.name == name.split("@")[0] + ("@K" if "@" in name else "")).problem_types
    metric = metric_named(name, types[0])
    assert metric(y, prediction, groups) == pytest.approx(expected, abs=1e-9)


def test_every_built_in_metric_is_tested():
    names = {case[0].split("@")[0] + ("@K" if "@" in case[0] else "") for case in CASES}
    assert names == {m.name for m in METRICS}


def test_a_metric_name_is_checked_against_the_problem_type(luigi_config):
    """map@12 is the family map@K at 12, and says which way is better; a name METRICS lacks, or one
    that does not score the problem type, is one line listing the names there are; a grouped metric
    without a group column is one line too."""
    metric = metric_named("map@12", "binary")
    assert (metric.name, metric.greater_is_better, metric.needs_groups) == ("map@12", True, True)
    assert metric_named("rmse", "regression").greater_is_better is False
    for name, problem in (("nonsense", "binary"), ("map@0", "binary"), ("roc_auc", "regression")):
        with pytest.raises(ConfigError, match=rf"metric = '{name}': for {problem} use one of .*map@K"):
            metric_named(name, problem)
    luigi_config("competition", "problem_type", "binary")
    luigi_config("competition", "metric", "map@12")
    luigi_config("competition", "group_column", "")
    with pytest.raises(ConfigError, match="metric = map@12 scores rows within groups: set group_column"):
        scoring()
    luigi_config("competition", "group_column", "display_id")
    assert scoring().name == "map@12"


# --- ranked files -------------------------------------------------------------------------------

KEYS = ["display_id", "ad_id"]


def predictions() -> pd.DataFrame:
    """Display 1's ads by score 11, 12, 10; display 2's: 25 first, then 21 and 30 tied."""
    return pd.DataFrame(
        {
            "display_id": [1, 1, 1, 2, 2, 2],
            "ad_id": [10, 11, 12, 30, 21, 25],
            "prediction": [0.2, 0.9, 0.5, 0.5, 0.5, 0.7],
        }
    )


SAMPLE = pd.DataFrame({"display_id": [2, 1], "ad_id": ["30 21 25", "10 11 12"]})


def test_a_ranked_file_lists_each_keys_values_best_first():
    """Each display's ads, by predicted score from the highest, in the sample's row order; ads of equal
    score in the order of their ids, whatever the order of the rows."""
    made = ranked_submission(SAMPLE, predictions(), KEYS, None, "sample_submission.csv")
    assert made.to_dict("list") == {"display_id": [2, 1], "ad_id": ["25 21 30", "11 12 10"]}
    shuffled = predictions().sample(frac=1.0, random_state=1)
    assert ranked_submission(SAMPLE, shuffled, KEYS, None, "sample_submission.csv").equals(made)
    validate(made, SAMPLE, ["display_id"], "sample_submission.csv")


def test_a_ranked_file_holds_at_most_top_k_values():
    made = ranked_submission(SAMPLE, predictions(), KEYS, 2, "sample_submission.csv")
    assert made["ad_id"].tolist() == ["25 21", "11 12"]


def test_a_ranked_list_column_of_another_name_lists_the_other_key():
    """H&M's shape: the sample's list column (`prediction`) is not a key column; the other key is listed."""
    sample = SAMPLE.rename(columns={"ad_id": "ads"})
    made = ranked_submission(sample, predictions(), KEYS, 1, "sample_submission.csv")
    assert made.to_dict("list") == {"display_id": [2, 1], "ads": ["25", "11"]}


def test_a_ranked_sample_whose_keys_are_not_tests_is_one_line():
    sample = pd.DataFrame({"display_id": [2, 3], "ad_id": ["", ""]})
    expected = r"'display_id' values do not match the test rows' \(1 only in the sample, e.g. 3; 1 only in test"
    with pytest.raises(DataError, match=expected):
        ranked_submission(sample, predictions(), KEYS, None, "sample_submission.csv")
