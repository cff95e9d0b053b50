"""String columns encoded for a tree model: categories when few, frequencies when many."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..pipeline import Feature, Ingest

if TYPE_CHECKING:
    import pandas as pd

# HistGradientBoosting takes at most 255 bins per feature, one of them for missing values.
MAX_CATEGORIES = 250


class CategoryCodes(Feature):
    """Low-cardinality strings as categorical columns; high-cardinality ones as value counts.

    Categories come from train and test together, which uses no target and keeps codes the
    same in both.
    """

    def columns(self) -> list[str]:
        return Ingest().columns_of("category")

    def make(self, df: pd.DataFrame) -> pd.DataFrame:
        import pandas as pd

        made = {}
        for column in self.columns():
            values = df[column].astype("string")
            distinct = values.dropna().unique()
            if len(distinct) <= MAX_CATEGORIES:
                made[column] = pd.Categorical(values, categories=sorted(distinct))
            else:
                made[f"{column}_count"] = values.map(values.value_counts()).astype("float64")
        return pd.DataFrame(made, index=df.index)
