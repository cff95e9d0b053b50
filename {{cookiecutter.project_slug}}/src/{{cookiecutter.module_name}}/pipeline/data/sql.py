"""Features' SQL: DuckDB views of the tables a feature declares and of `rows`, and a query's result
aligned to the rows.

`rows` is the rows being built, train's then test's in their order: their key columns, the columns
the feature's `columns()` names, and `_row`, the row's position (0, 1, ...). A result lines up with
`rows` by the first rule that fits:

- it has a `_row` column: each result row goes to the row at that position;
- it has every key column: each result row goes to the row with its key (so a plain
  `SELECT <key>, avg(x) FROM history GROUP BY <key>` works);
- otherwise it is taken as it comes, which must be one row per row of `rows`, in their order
  (`... FROM rows LEFT JOIN ... ORDER BY _row`).

Rows the result does not mention get missing values; a key (or position) the result repeats, or a
result of another length, is the feature's "returned N rows for M" error.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DataError
from ..resources.database import literal, quoted

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    import pyarrow as pa

POSITION = "_row"
ROWS = "rows"
BATCH_ROWS = 1 << 16  # rows per record batch of a result written a batch at a time


def create_views(
    database: duckdb.DuckDBPyConnection,
    tables: dict[str, Path],
    train: Path,
    test: Path,
    train_rows: int,
    columns: list[str],
) -> None:
    """A view per table (name -> Parquet file), and `rows`: `columns` of train then test, with _row."""
    for name, path in tables.items():
        database.execute(f"CREATE VIEW {quoted(name)} AS SELECT * FROM read_parquet({literal(path)})")
    selected = "".join(f"{quoted(c)}, " for c in columns)
    parts = [
        f"SELECT {selected}file_row_number + {offset} AS {POSITION} "
        f"FROM read_parquet({literal(path)}, file_row_number = true)"
        for path, offset in ((train, 0), (test, train_rows))
    ]
    database.execute(f"CREATE VIEW {ROWS} AS {parts[0]} UNION ALL {parts[1]}")


def result_columns(database: duckdb.DuckDBPyConnection, query: str, where: str) -> list[str]:
    """The names of a query's result columns (DuckDB binds the query, without running it)."""
    return list(run(database, query, where).columns)


def run(database: duckdb.DuckDBPyConnection, query: str, where: str) -> duckdb.DuckDBPyRelation:
    """A relation for the query; a query DuckDB refuses (a missing table or column, bad syntax) is one
    DataError line naming the feature (`where`)."""
    import duckdb

    try:
        return database.sql(query)
    except duckdb.Error as error:
        raise failed(database, where, error) from None


def failed(database: duckdb.DuckDBPyConnection, where: str, error: Exception) -> DataError:
    """The one line for a query DuckDB refused; for a table it does not know, with the views there
    are and the tables of data/raw a feature may list in tables()."""
    from ..config import raw_tables

    message = f"{where}: its SQL failed: {one_line(error)}"
    if "Catalog Error" in str(error):
        views = [name for (name,) in database.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()]
        message += (
            f" (its views: {', '.join(sorted(views))}; tables there to list in tables(): {', '.join(raw_tables())})"
        )
    return DataError(message)


def one_line(error: Exception) -> str:
    """DuckDB's message on one line (it adds lines of candidates and a caret under the query)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip() and not line.strip().startswith("^")]
    kept = [line for line in lines if not line.startswith(("LINE ", "SELECT", "FROM"))]
    return " ".join(kept or lines)


def aligned(database: duckdb.DuckDBPyConnection, query: str, keys: list[str], where: str) -> tuple[str, bool]:
    """SQL of the query's result lined up with `rows` (the module's rules): the rows' key columns,
    then the result's other columns; and whether it was lined up (False: taken as it comes, when the
    result has neither _row nor every key column)."""
    columns = result_columns(database, query, where)
    key_list = ", ".join(f"r.{quoted(k)}" for k in keys)
    if POSITION in columns:
        on = f"q.{quoted(POSITION)} = r.{quoted(POSITION)}"
    elif all(k in columns for k in keys):
        on = " AND ".join(f"q.{quoted(k)} = r.{quoted(k)}" for k in keys)
    else:
        return query, False
    made = [c for c in columns if c != POSITION and c not in keys]
    selected = "".join(f", q.{quoted(c)}" for c in made)
    order = f"ORDER BY r.{quoted(POSITION)}"
    return f"SELECT {key_list}{selected} FROM {ROWS} r LEFT JOIN ({query}) q ON {on} {order}", True


def frame(database: duckdb.DuckDBPyConnection, query: str, keys: list[str], where: str) -> pd.DataFrame:
    """The query's result as a pandas DataFrame lined up with `rows`, without its key columns."""
    import duckdb

    sql, lined_up = aligned(database, query, keys, where)
    try:
        result = database.sql(sql).df()
    except duckdb.Error as error:
        raise failed(database, where, error) from None
    if lined_up:
        result = result.drop(columns=keys)
    return result


def batches(database: duckdb.DuckDBPyConnection, query: str, keys: list[str], where: str) -> Iterator[pa.RecordBatch]:
    """The query's result lined up with `rows` (key columns first), a record batch at a time: DuckDB
    sorts and joins out of core, and no more than a batch is ever in Python. A result that carries
    neither _row nor the key columns cannot be lined up here: one line says so."""
    import duckdb
    import pyarrow as pa

    sql, lined_up = aligned(database, query, keys, where)
    if not lined_up:
        raise DataError(
            f"{where}: query() must select the key columns ({', '.join(keys)}) or {POSITION} (from {ROWS}), "
            "so that its result lines up with the rows"
        )
    try:
        reader = database.sql(sql).to_arrow_reader(BATCH_ROWS)
        for batch in reader:
            yield _plain_numbers(batch)
    except (duckdb.Error, pa.ArrowException) as error:
        raise failed(database, where, error) from None


def _plain_numbers(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Decimals (DuckDB's sums of integers, HUGEINT) as float64, as DuckDB gives them to pandas: a
    feature column is a number or a category."""
    import pyarrow as pa

    if not any(pa.types.is_decimal(field.type) for field in batch.schema):
        return batch
    columns = [c.cast(pa.float64()) if pa.types.is_decimal(c.type) else c for c in batch.columns]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def split_at(batches: Iterator[pa.RecordBatch], rows: int) -> tuple[Iterator, Iterator]:
    """The batches as two iterators, the first `rows` rows then the rest, for a consumer that reads
    the first to its end before the second (the cache writes train, then test); each batch is read
    once."""
    stream = iter(batches)
    rest: list = []

    def first() -> Iterator:
        seen = 0
        for batch in stream:
            if seen + batch.num_rows <= rows:
                seen += batch.num_rows
                yield batch
                if seen == rows:
                    return
                continue
            cut = rows - seen
            if cut:
                yield batch.slice(0, cut)
            rest.append(batch.slice(cut))
            return

    def second() -> Iterator:
        yield from rest
        yield from stream

    return first(), second()
