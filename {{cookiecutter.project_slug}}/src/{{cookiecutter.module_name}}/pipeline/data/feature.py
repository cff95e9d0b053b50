"""Feature: the base class of every feature task. A feature author writes one function."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from ..config import checked_competition, key_columns, table_names, target_columns
from ..errors import ConfigError, DataError
from ..storage.cache import CachedTask, import_steps
from .ingest import Ingest
from .split import Split
from .table import FILE, Table

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    import pyarrow as pa


class Feature(CachedTask):
    """A group of feature columns for the train and test rows, keyed by the key columns.

    Override `make(df)` for features of the rows themselves: df holds the train rows then the
    test rows, with only the columns `columns()` names. Features that learn from the target
    set `uses_target = True` and override `make_train_test(train, test)`: there train also has
    the target and the `fold` of each row, so out-of-fold statistics can avoid leakage.
    Features whose make(df) uses only each row's own values set `row_wise = True`: they then
    run on one batch of rows at a time (see features/numeric.py), which is how a table larger than
    memory is processed.

    Features that read other tables of data/raw list them in `tables()` (their results are part
    of the feature's hash) and read them inside make() with `self.table(name, columns)` (pandas)
    or `self.sql(query)` (DuckDB, out of core; sql.py says how a result lines up with the rows).
    A result too large for pandas: override `query()` instead of make(), and the pipeline writes
    its result a batch at a time.
    """

    uses_target: ClassVar[bool] = False
    # True when make(df) uses only each row's own values: it then runs on a batch of Ingest's rows
    # at a time, so a feature of a table larger than memory never holds it whole.
    row_wise: ClassVar[bool] = False
    # True: when data/raw lacks a table of tables(), make no columns (with a warning) instead of
    # stopping: the demo's examples, so that a competition without their table runs with them listed.
    skip_missing_tables: ClassVar[bool] = False

    def requires(self) -> dict[str, Any]:
        needs: dict[str, Any] = {"data": Ingest(), "split": Split()}
        tables = [Table(name=name) for name in self._declared() if name not in table_names().values()]
        if tables:
            needs["tables"] = tables
        return needs

    def preload(self) -> Iterator[None]:
        yield from super().preload()
        if self.tables() or self.query() is not None:
            yield from import_steps("duckdb")

    def settings(self) -> dict[str, Any]:
        cfg = checked_competition()
        return {"id_column": cfg.id_column, "target_column": cfg.target_column}

    def columns(self) -> list[str] | None:
        """The raw columns this feature reads (the key columns are always read); None reads them all."""
        return None

    def tables(self) -> list[str]:
        """Other tables of data/raw this feature reads (names: file names less .csv, .csv.gz or
        .parquet), in make() through self.table() or self.sql(), or in query()."""
        return []

    def query(self) -> str | None:
        """A DuckDB query whose result is this feature's columns, written a batch at a time (for
        results too large for pandas); None: make() makes them. It must select the key columns or
        `_row`, by which its rows line up with `rows` (pipeline/data/sql.py)."""
        return None

    def make(self, df: pd.DataFrame) -> pd.DataFrame:
        """New feature columns for the rows of df, with df's index."""
        raise TypeError(f"{self.task_family} must define make(df), make_train_test(train, test) or query()")

    def make_train_test(self, train: pd.DataFrame, test: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        import pandas as pd

        both = pd.concat([train, test], ignore_index=True)
        made = self.make(both)
        return made.iloc[: len(train)].reset_index(drop=True), made.iloc[len(train) :].reset_index(drop=True)

    # -- reading other tables --

    def keys(self) -> list[str]:
        """The key columns of the rows ([competition] id_column)."""
        return key_columns()

    def keys_sql(self) -> str:
        """The key columns as DuckDB SQL, quoted and separated by commas: `SELECT {keys}, ... GROUP BY {keys}`."""
        from ..resources.database import quoted

        return ", ".join(quoted(k) for k in self.keys())

    def table(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        """A table of tables() as a pandas DataFrame, only the columns asked for (None: all)."""
        task, file = self._source(name)
        if columns is not None:
            from .convert import parquet_schema

            with task.reading(file) as path:
                names = parquet_schema(path).names
            lacking = [c for c in columns if c not in names]
            if lacking:
                raise DataError(
                    f"{self.task_family}: table {name!r} has no column {', '.join(map(repr, lacking))} "
                    f"(it has {', '.join(names[:12])}{', ...' if len(names) > 12 else ''})"
                )
        return task.load(file, columns=columns)

    def sql(self, query: str) -> pd.DataFrame:
        """A DuckDB query over the tables of tables() (each a view of its name) and `rows` (the rows
        being built, with _row, their position), its result lined up with the rows (sql.py), as a
        pandas DataFrame of the result's columns other than the keys and _row."""
        from .sql import frame

        if self.row_wise:
            raise ConfigError(f"{self.task_family}: sql() reads every row at once; set row_wise = False")
        return frame(self._database(), query, self.keys(), self.task_family)

    def _declared(self) -> list[str]:
        """tables(), checked: names of tables, each once, not `rows`."""
        from .sql import ROWS

        names = list(self.tables())
        bad = [n for n in names if not isinstance(n, str) or not n or n == ROWS]
        if bad or len(set(names)) != len(names):
            raise ConfigError(
                f"{self.task_family}.tables() = {names}: list table names (file names less their ending), "
                f"each once, not {ROWS!r} (the rows' own view)"
            )
        return names

    def _source(self, name: str) -> tuple[CachedTask, str]:
        """The task and result table that hold a declared table: Ingest's for the rows' tables."""
        roles = table_names()
        declared = self._declared()
        if name not in declared:
            from ..config import raw_tables

            raise DataError(
                f"{self.task_family}: table {name!r} is not in its tables() ({', '.join(declared) or 'none'}); "
                f"list it there (tables there: {', '.join(raw_tables()) or 'none'})"
            )
        for role in ("sample_submission", "train", "test"):  # Ingest's copies, named by role
            if roles[role] == name:
                return Ingest(), role
        return Table(name=name), FILE

    @contextlib.contextmanager
    def _opened(self) -> Iterator[None]:
        """The block in which self.sql() may run: its DuckDB connection, opened on first use, is
        closed when the block ends."""
        self._database_stack = contextlib.ExitStack()
        try:
            with self._database_stack:
                yield
        finally:
            self._database_stack = None
            self._connection = None

    def _database(self) -> duckdb.DuckDBPyConnection:
        """This build's DuckDB connection, with its views (see sql.py)."""
        connection = getattr(self, "_connection", None)
        if connection is not None:
            return connection
        if getattr(self, "_database_stack", None) is None:
            raise ConfigError(f"{self.task_family}: sql() runs only while the feature is built (inside make())")
        from ..resources.database import connection as connect

        self._connection = self._database_stack.enter_context(connect(getattr(self, "threads", 1)))
        self._views(self._connection)
        return self._connection

    def _views(self, database: duckdb.DuckDBPyConnection) -> None:
        from .sql import create_views

        data = Ingest()
        tables = {}
        for name in self._declared():
            task, file = self._source(name)
            tables[name] = task.done_folder() / f"{file}.parquet"
        folder = data.done_folder()
        columns = self._row_columns()
        rows = data.manifest()["facts"]["rows"]["train"]
        create_views(database, tables, folder / "train.parquet", folder / "test.parquet", rows, columns)

    def _row_columns(self) -> list[str]:
        """The columns of the rows this feature reads, in train's order: the keys and columns()
        (None: every column train and test share)."""
        keys, columns = self.keys(), self.columns()
        facts = Ingest().manifest()["facts"]
        known = facts["kinds"]
        if columns is not None:
            unknown = [c for c in columns if c not in known and c not in keys]
            if unknown:
                names = table_names()
                raise DataError(
                    f"{self.task_family} reads {unknown}, which {names['train']} and {names['test']} do not both have"
                )
        wanted = set(known if columns is None else columns) | set(keys)
        return [c for c in facts["schema"]["train"] if c in wanted]

    # -- building --

    def build(self) -> dict[str, pd.DataFrame | Iterator[pd.DataFrame]]:
        absent = self._absent_tables()
        if absent:
            return self._without(absent)
        if self.query() is not None:
            return self._queried()
        with self._opened():
            return self._made()

    def _absent_tables(self) -> list[str]:
        return [name for name in self._declared() if isinstance(task := self._source(name)[0], Table) and task.absent()]

    def _without(self, absent: list[str]) -> dict[str, pd.DataFrame]:
        """No columns (skip_missing_tables), or the one line naming the feature and the tables there are."""
        from ..config import raw_tables

        there = ", ".join(raw_tables()) or "none"
        missing = ", ".join(map(repr, absent))
        if not self.skip_missing_tables:
            raise DataError(
                f"{self.task_family}: data/raw has no table {missing} (a .csv, .csv.gz or .parquet file; tables "
                f"there: {there}); add it, or take the feature out of FEATURES"
            )
        note = f"WARNING: {self.task_family}: data/raw has no table {missing}, so the feature makes no columns\n"
        os.write(2, note.encode())
        self.facts.update(columns=[], missing_tables=absent)
        keys = self.keys()
        return {part: Ingest().load(part, columns=keys) for part in ("train", "test")}

    def _made(self) -> dict[str, pd.DataFrame | Iterator[pd.DataFrame]]:
        keys = self.keys()
        data = Ingest()
        columns = self._row_columns()
        if self.row_wise and not self.uses_target:
            return {part: self._by_row_group(part, columns, keys) for part in ("train", "test")}
        targets = target_columns()
        train = data.load("train", columns=[*columns, *(targets if self.uses_target else [])])
        if self.uses_target:
            train["fold"] = Split().load("folds", columns=["fold"])["fold"].to_numpy()
        else:
            train = train.drop(columns=targets, errors="ignore")
        test = data.load("test", columns=columns)

        made_train, made_test = self.make_train_test(train, test)
        for made, rows, part in ((made_train, train, "train"), (made_test, test, "test")):
            if len(made) != len(rows):
                raise DataError(f"{self.task_family} returned {len(made)} {part} rows for {len(rows)}")
        if list(made_train.columns) != list(made_test.columns):
            raise DataError(f"{self.task_family} returned different train and test columns")
        self.facts["columns"] = [str(c) for c in made_train.columns]
        return {"train": _keyed(made_train, train, keys), "test": _keyed(made_test, test, keys)}

    def _by_row_group(self, part: str, columns: list[str], keys: list[str]) -> Iterator[pd.DataFrame]:
        """make() applied to one batch of Ingest's rows at a time, keyed."""
        targets = target_columns()
        for rows in Ingest().batches(part, columns):
            made = self.make(rows.drop(columns=targets, errors="ignore"))
            if len(made) != len(rows):
                raise DataError(f"{self.task_family} returned {len(made)} {part} rows for {len(rows)}")
            names = [str(c) for c in made.columns]
            if self.facts.setdefault("columns", names) != names:
                raise DataError(f"{self.task_family} returned different columns for different rows")
            yield _keyed(made, rows, keys)

    def _queried(self) -> dict[str, Iterator[pa.RecordBatch]]:
        """query()'s result, lined up with the rows, streamed from DuckDB into train.parquet then
        test.parquet a record batch at a time."""
        from .sql import batches, split_at

        rows = Ingest().manifest()["facts"]["rows"]
        query, keys = self.query(), self.keys()

        def stream() -> Iterator[pa.RecordBatch]:
            with self._opened():
                for batch in batches(self._database(), query, keys, self.task_family):
                    names = [n for n in batch.schema.names if n not in keys]
                    if self.facts.setdefault("columns", names) != names:
                        raise DataError(f"{self.task_family} returned different columns for different rows")
                    yield batch

        train, test = split_at(stream(), rows["train"])
        return {
            "train": self._counted(train, "train", rows["train"], rows),
            "test": self._counted(test, "test", rows["test"], rows),
        }

    def _counted(self, batches: Iterator, part: str, expected: int, rows: dict[str, int]) -> Iterator:
        """The batches of one part, checked to hold its rows: else "returned N rows for M" (the
        result repeats a key, or is short)."""
        seen = 0
        for batch in batches:
            seen += batch.num_rows
            if seen > expected and part == "test":
                break
            yield batch
        if seen != expected:
            total, made = rows["train"] + rows["test"], rows["train"] + seen if part == "test" else seen
            raise DataError(
                f"{self.task_family} returned {'more than ' if seen > expected else ''}{made} rows for {total} "
                "(its result must name each key, or _row, at most once)"
            )


def _keyed(made: pd.DataFrame, rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    made = made.reset_index(drop=True)
    for position, key in enumerate(keys):
        made.insert(position, key, rows[key].to_numpy())
    return made
