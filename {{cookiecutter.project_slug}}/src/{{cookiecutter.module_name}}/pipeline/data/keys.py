"""Row keys of several columns (`id_column = display_id ad_id`), checked with DuckDB over the
Parquet files Ingest has just written: unique in each file, and the same keys in the sample as in
test. DuckDB groups and joins out of core, so the check holds whatever the number of rows. (A key of
one column is checked as its file streams, with one bit per id: ingest.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..config import shown
from ..errors import DataError
from ..resources.database import literal, quoted

if TYPE_CHECKING:
    import duckdb

EXAMPLES = 3


def _key(values: tuple) -> str:
    return "(" + ", ".join(str(value) for value in values) + ")"


def _examples(keys: list[tuple]) -> str:
    return ", ".join(_key(k) for k in keys[:EXAMPLES]) + (", ..." if len(keys) > EXAMPLES else "")


def _columns(keys: list[str], as_text: bool) -> str:
    return ", ".join(f"CAST({quoted(k)} AS VARCHAR) AS {quoted(k)}" if as_text else quoted(k) for k in keys)


def require_unique_keys(database: duckdb.DuckDBPyConnection, parquet: Path, raw: Path, keys: list[str]) -> None:
    """No two rows of a file share a key: else one line naming some repeated keys."""
    columns = _columns(keys, as_text=False)
    repeated = database.execute(
        f"SELECT {columns} FROM read_parquet({literal(parquet)}) GROUP BY {columns} HAVING count(*) > 1 "
        f"ORDER BY {columns} LIMIT {EXAMPLES + 1}"
    ).fetchall()
    if repeated:
        raise DataError(f"{shown(raw)}: key ({', '.join(keys)}) has repeated values ({_examples(repeated)})")


def require_same_keys(
    database: duckdb.DuckDBPyConnection, sample: tuple[Path, Path], test: tuple[Path, Path], keys: list[str]
) -> None:
    """The sample's keys are test's (in any order). sample and test are (Parquet file, raw file);
    keys whose columns have other types in the two files are compared as text."""
    (sample_parquet, sample_raw), (test_parquet, test_raw) = sample, test
    types = [
        database.sql(f"SELECT {_columns(keys, False)} FROM read_parquet({literal(path)})").types
        for path in (sample_parquet, test_parquet)
    ]
    columns = _columns(keys, as_text=types[0] != types[1])
    using = ", ".join(quoted(k) for k in keys)

    def only_in(one: Path, other: Path) -> tuple[int, list[tuple]]:
        query = (
            f"FROM (SELECT {columns} FROM read_parquet({literal(one)})) ANTI JOIN "
            f"(SELECT {columns} FROM read_parquet({literal(other)})) USING ({using})"
        )
        count = database.execute(f"SELECT count(*) {query}").fetchone()[0]
        found = database.execute(f"SELECT * {query} ORDER BY ALL LIMIT {EXAMPLES + 1}").fetchall() if count else []
        return count, found

    in_sample, sample_keys = only_in(sample_parquet, test_parquet)
    in_test, test_keys = only_in(test_parquet, sample_parquet)
    if in_sample or in_test:
        raise DataError(
            f"{shown(sample_raw)}: keys ({', '.join(keys)}) do not match {test_raw.name} "
            f"({in_sample} only in the sample, e.g. {_examples(sample_keys) or '-'}; "
            f"{in_test} only in test, e.g. {_examples(test_keys) or '-'})"
        )
