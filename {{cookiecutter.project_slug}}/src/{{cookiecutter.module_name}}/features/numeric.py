"""Numeric columns as floats, with infinities turned into missing values."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ..pipeline import Feature, Ingest

if TYPE_CHECKING:
    import pandas as pd


class NumericColumns(Feature):
    """The raw numeric (and boolean) columns, cleaned: float64, inf -> NaN.

    Each value depends only on its own row, so `row_wise` lets it run on one batch of rows at a
    time: on a table larger than memory it holds one chunk of the columns it reads, and its
    output is written a batch at a time too.
    """

    row_wise: ClassVar[bool] = True

    def columns(self) -> list[str]:
        return Ingest().columns_of("numeric")

    def make(self, df: pd.DataFrame) -> pd.DataFrame:
        import numpy as np

        return df[self.columns()].astype("float64").replace([np.inf, -np.inf], np.nan)
