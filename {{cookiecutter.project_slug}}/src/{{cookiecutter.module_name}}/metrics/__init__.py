"""Your competition's evaluation, as its Evaluation page gives it: how a submission is scored and what
its file looks like. METRICS lists the metrics `[competition] metric` may name (the built-ins and
yours); FORMATS lists the functions `[submission] format` may name, for a file that is neither `rows`
nor `ranked`. Add yours here (copy stub.py)."""

from __future__ import annotations

from collections.abc import Callable

from ..pipeline import BUILT_IN_METRICS, Metric

METRICS: list[Metric] = [
    # roc_auc, log_loss, accuracy, f1_macro, qwk, rmse, rmsle, mae, r2, map@K and ndcg@K (any K: map@12)
    *BUILT_IN_METRICS,
]

FORMATS: list[Callable] = []
