"""A metric and a submission format to copy: save as metrics/<name>.py, write the function, and list it
in METRICS or FORMATS (metrics/__init__.py). Then in luigi.cfg:

    [competition]
    metric = gini

    [submission]
    format = joined_key

A metric is one function, score(y, prediction, groups) -> number, plus its direction:
- y: the target, class numbers for classification (the classes sorted), else values;
- prediction: P(positive class) (binary), one probability column per class (multiclass), values
  (regression), for the same rows;
- groups: each row's value of `[competition] group_column` (None when it is empty). A metric that
  scores rows within their groups sets needs_groups=True: the folds then keep each group whole.
With several target columns, the CV score is the metric's mean over them, each scored on its own.
Import numpy and friends inside the function, so an up-to-date `make all` never loads them; a change
to this file re-scores every model (and re-fits them: the score is part of their results).

A format is one function, (predictions, sample) -> the submission's DataFrame: predictions holds the
test rows' key columns and the model's prediction column(s), sample is sample_submission as read.
Whatever it returns is checked against the sample (its columns, its first column's keys, its row
order) before it is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..pipeline import Metric

if TYPE_CHECKING:
    import pandas as pd


def gini(y, prediction, groups) -> float:
    """Normalised Gini coefficient (Porto Seguro's metric): 2 * ROC AUC - 1."""
    from sklearn.metrics import roc_auc_score

    return 2 * roc_auc_score(y, prediction) - 1


GINI = Metric("gini", gini, greater_is_better=True, problem_types=("binary",))


def joined_key(predictions: pd.DataFrame, sample: pd.DataFrame) -> pd.DataFrame:
    """For a sample whose first column joins two key columns with "_" (row_id = "1234_5"): the
    prediction of each of its rows, in its order."""
    first, second = predictions.columns[:2]
    joined = predictions[first].astype("string") + "_" + predictions[second].astype("string")
    by_key = predictions["prediction"].set_axis(joined.to_numpy())
    key = sample.columns[0]
    return sample[[key]].assign(**{sample.columns[1]: by_key.reindex(sample[key].astype("string")).to_numpy()})
