"""Numeric columns as floats, with infinities turned into missing values."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..data.ingest import Ingest
from .base import Feature

if TYPE_CHECKING:
    import pandas as pd


class NumericColumns(Feature):
    """The raw numeric (and boolean) columns, cleaned: float64, inf -> NaN."""

    def columns(self) -> list[str]:
        return Ingest().columns_of("numeric")

    def make(self, df: pd.DataFrame) -> pd.DataFrame:
        import numpy as np

        return df[self.columns()].astype("float64").replace([np.inf, -np.inf], np.nan)
