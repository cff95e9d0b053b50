"""Table: one table of data/raw as typed Parquet, ingested on first use by the features that read it.

Every `*.csv`, `*.csv.gz` and `*.parquet` file in data/raw is a table named by its stem. The tables
that hold the rows (train, test, sample_submission) are Ingest's; any other is a Table of its own,
built only when a feature declares it (`tables()`), so a changed table re-runs only its Table and
the features that read it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import luigi

from ..config import ingest, raw_tables, table_file
from ..errors import DataError
from ..storage.cache import CachedTask
from .convert import KIND_OF, FileScan, TypeDriftError, few_distinct, is_parquet, scan, stored_kind, write_parquet
from .raw import RawData

FILE = "table"  # the result's table: table.parquet


class Table(CachedTask):
    """`table.parquet`: every column of data/raw/<name>.csv (.csv.gz, .parquet), typed: a CSV's
    types from its values as Ingest finds them, a Parquet file's own. Its manifest gives the rows,
    each column's type and the text columns with few distinct values (loaded as pandas categoricals).

    A table that data/raw does not have gives a result that says so (facts `absent`, and the tables
    there are), so that a feature declaring it can name itself in the error, or make no columns.
    """

    name = luigi.Parameter(description="a table of data/raw: a file's name less .csv, .csv.gz or .parquet")

    def requires(self) -> RawData:
        return RawData()

    def settings(self) -> dict[str, Any]:
        options = ingest()
        return {
            "chunk_mb": options.chunk_mb,
            "compression": options.compression,
            "dictionary_max_values": options.dictionary_max_values,
        }

    def inputs(self) -> dict[str, Path]:
        return {self.name: table_file(self.name)}

    def build(self) -> dict:
        path = table_file(self.name)
        if not path.is_file():
            self.facts.update(absent=True, tables=sorted(raw_tables()))
            return {}
        head = scan(path, {})
        drifted = any(column.kind is None for column in head.columns.values()) and not is_parquet(path)
        if not drifted:  # types from the first chunk; a later value that does not fit them drifts
            try:
                written, types = self.write(head, head)
            except TypeDriftError:
                drifted = True
        if drifted:
            try:
                written, types = self.write(scan(path, {}, head), head)
            except TypeDriftError as drift:  # the whole scan saw every value: only a bug gets here
                raise DataError(str(drift)) from None
        self.facts.update(
            rows=written.rows,
            schema=types,
            kinds={c: KIND_OF[kind] for c, kind in types.items() if kind in KIND_OF},
            dictionary_columns=[
                c for c, kind in types.items() if kind == "string" and few_distinct([written.columns[c]])
            ],
            types_from="the file" if is_parquet(path) else "every value" if drifted else "the first chunk",
        )
        return {}

    def write(self, scanned: FileScan, head: FileScan) -> tuple[FileScan, dict[str, str]]:
        """table.parquet with the types of the scan; what its values held, and the stored types."""
        types = {c: stored_kind([s], may_be_date=True) for c, s in scanned.columns.items()}
        out = self.workdir / f"{FILE}.parquet"
        parquet = is_parquet(scanned.path)
        written = write_parquet(scanned.path, types, list(types), out, None, False, head.unrepeated, keep_types=parquet)
        return written, types

    def absent(self) -> bool:
        """Whether data/raw had no such table when this result was made."""
        return bool(self.manifest()["facts"].get("absent"))

    def read_dictionary(self, name: str) -> list[str]:
        """Text columns with few distinct values load as pandas categoricals."""
        return self.manifest()["facts"].get("dictionary_columns", []) if name == FILE else []
