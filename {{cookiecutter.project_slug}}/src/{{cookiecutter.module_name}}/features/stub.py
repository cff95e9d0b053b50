"""A feature to copy: `cp stub.py my_feature.py`, write make(), add the class to FEATURES.

Rules that keep the pipeline fast and leak-free:
- import pandas / numpy inside make(), so an up-to-date `make all` never loads them;
- read only the columns you use (columns()); the id is added for you;
- return one row per input row, with df's index; the rows are train's, then test's;
- need the target? set `uses_target = True` and override make_train_test(train, test)
  instead, computing train rows out of fold (see target_encoding.py).
- a large table? if make(df) uses only each row's own values (like this ratio), set
  `row_wise = True`: make() then gets one batch of rows at a time and the result is written a
  batch at a time, so memory stays near one batch (see numeric.py). For statistics over all
  rows, read only the columns you need, or loop over `Ingest().batches("train", columns)`.
Editing this class re-runs it and everything downstream of it, and nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..pipeline import Feature

if TYPE_CHECKING:
    import pandas as pd


class RatioFeature(Feature):
    """Say in a line what the feature captures: here, the ratio of two numeric columns."""

    def columns(self) -> list[str]:
        return ["numerator_column", "denominator_column"]

    def make(self, df: pd.DataFrame) -> pd.DataFrame:
        import numpy as np
        import pandas as pd

        numerator, denominator = (df[c].astype("float64") for c in self.columns())
        ratio = numerator / denominator.replace(0, np.nan)
        return pd.DataFrame({"ratio": ratio}, index=df.index)
