"""The demo's `visits` table summed up per row with DuckDB SQL: how to aggregate a history table."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ..pipeline import Feature

if TYPE_CHECKING:
    import pandas as pd


class VisitTotals(Feature):
    """Number of visits, their mean amount and the days since the last one.

    DuckDB groups the table out of core, so this works as well for a history of a billion rows
    (page_views, bureau_balance); the result lines up with the rows by its key columns. With your
    own competition, write your history table's name and columns, or delete this feature.
    """

    skip_missing_tables: ClassVar[bool] = True  # no `visits` in data/raw: no columns, not an error

    def tables(self) -> list[str]:
        return ["visits"]

    def columns(self) -> list[str]:
        return []  # reads no column of the rows themselves: df holds only their keys

    def make(self, df: pd.DataFrame) -> pd.DataFrame:
        key = self.keys_sql()  # the key columns, e.g. "id" (or "display_id", "ad_id")
        return self.sql(f"""
            SELECT {key},
                   count(*) AS visits,
                   avg(amount) AS visit_amount_mean,
                   date_diff('day', max(CAST(visit_date AS DATE)), DATE '2025-01-01') AS days_since_visit
            FROM visits
            GROUP BY {key}
        """)
