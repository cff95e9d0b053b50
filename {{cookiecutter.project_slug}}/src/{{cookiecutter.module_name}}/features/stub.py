"""Features to copy: `cp stub.py my_feature.py`, write make(), add the class to FEATURES.

Rules that keep the pipeline fast and leak-free:
- import pandas / numpy inside make(), so an up-to-date `make all` never loads them;
- read only the columns you use (columns()); the key columns are added for you;
- return one row per input row, with df's index; the rows are train's, then test's;
- need the target? set `uses_target = True` and override make_train_test(train, test)
  instead, computing train rows out of fold (see target_encoding.py).
- a large table? if make(df) uses only each row's own values (like this ratio), set
  `row_wise = True`: make() then gets one batch of rows at a time and the result is written a
  batch at a time, so memory stays near one batch (see numeric.py). For statistics over all
  rows, read only the columns you need, or loop over `Ingest().batches("train", columns)`.
- other tables of data/raw (history, lookups)? list them in tables() and read them in make():
  `self.table(name, columns)` gives a pandas DataFrame (tables that fit in memory), `self.sql(query)`
  runs DuckDB out of core over every table you listed and `rows` (the rows being built, with their
  key columns and `_row`, their position); a result with the key columns (or `_row`) lines up with
  the rows by them (see HistoryFeature below, visit_totals.py, last_visit.py). A result too large for
  pandas (many columns for millions of rows): return the query from query() instead of defining
  make(), and the pipeline writes it to the feature's file a batch at a time.
Editing this class re-runs it and everything downstream of it, and nothing else; so does changing a
table it lists.
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


class HistoryFeature(Feature):
    """Here: per row, statistics of its rows in a history table (DuckDB) and a value looked up in a
    small table (pandas)."""

    def tables(self) -> list[str]:
        return ["history_table", "lookup_table"]  # file names in data/raw, less .csv (.csv.gz, .parquet)

    def columns(self) -> list[str]:
        return ["lookup_column"]  # the rows' own columns it reads (df, and the `rows` view)

    def make(self, df: pd.DataFrame) -> pd.DataFrame:
        key = self.keys_sql()  # the key columns, quoted for SQL
        made = self.sql(f"""
            SELECT {key}, count(*) AS history_rows, avg(amount) AS history_amount_mean
            FROM history_table
            GROUP BY {key}
        """)  # lines up with df's rows by key; rows without history get missing values
        lookup = self.table("lookup_table", ["lookup_column", "lookup_value"])  # one row per lookup_column
        made["lookup_value"] = df[["lookup_column"]].merge(lookup, how="left")["lookup_value"].to_numpy()
        return made.set_axis(df.index)
