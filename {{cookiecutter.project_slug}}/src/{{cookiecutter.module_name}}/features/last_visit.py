"""The demo's `visits` table looked up in pandas: each row's latest visit."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ..pipeline import Feature

if TYPE_CHECKING:
    import pandas as pd


class LastVisit(Feature):
    """The amount and channel of each row's latest visit.

    self.table() reads the columns asked for into pandas: simple, for tables that fit in memory
    (lookups such as planes or stores, or a history of a few million rows); for larger ones use
    self.sql() (see visit_totals.py). With your own competition, point it at your table or delete it.
    """

    skip_missing_tables: ClassVar[bool] = True  # no `visits` in data/raw: no columns, not an error

    def tables(self) -> list[str]:
        return ["visits"]

    def columns(self) -> list[str]:
        return []  # df holds only the rows' keys

    def make(self, df: pd.DataFrame) -> pd.DataFrame:
        keys = self.keys()
        visits = self.table("visits", [*keys, "visit_date", "amount", "channel"])
        latest = visits.sort_values("visit_date", kind="stable").drop_duplicates(keys, keep="last")
        latest = latest.rename(columns={"amount": "last_visit_amount", "channel": "last_visit_channel"})
        found = df[keys].merge(latest, on=keys, how="left")  # a left merge keeps df's row order
        return found[["last_visit_amount", "last_visit_channel"]].set_axis(df.index)
