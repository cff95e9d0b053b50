"""Date columns split into parts a tree can use."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ..pipeline import Feature, Ingest

if TYPE_CHECKING:
    import pandas as pd


class DateParts(Feature):
    """Year, month, day, weekday, day of year and days since 1970 of each date column."""

    row_wise: ClassVar[bool] = True  # each row's parts come from its own dates: one batch at a time

    def columns(self) -> list[str]:
        return Ingest().columns_of("date")

    def make(self, df: pd.DataFrame) -> pd.DataFrame:
        import pandas as pd

        made = {}
        for column in self.columns():
            when = pd.to_datetime(df[column])
            made[f"{column}_year"] = when.dt.year
            made[f"{column}_month"] = when.dt.month
            made[f"{column}_day"] = when.dt.day
            made[f"{column}_weekday"] = when.dt.day_of_week
            made[f"{column}_dayofyear"] = when.dt.day_of_year
            made[f"{column}_days"] = (when - pd.Timestamp("1970-01-01")).dt.total_seconds() / 86400
        return pd.DataFrame(made, index=df.index).astype("float64")
