"""Ingest: check the tables that hold the rows (train, test, sample_submission) against the data
contract and store them as typed Parquet.

The files stream through convert.py in bounded memory. Column types come from the first chunk of
train and test; if a later chunk does not fit them (a column empty at first, codes that look
numeric until a letter appears), a first pass over every value of the columns not yet text decides
the types and the files are converted again. A key of one column is checked for repeats with one bit
per id when its ids are integers in a dense range, and test's ids are held to compare with the
sample's; a key of several columns is checked afterwards over the written Parquet (keys.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config import (
    checked_competition,
    file_keys,
    ingest,
    key_columns,
    sample_is_test,
    shown,
    submission_format,
    table_file,
    table_names,
    target_columns,
)
from ..errors import ConfigError, DataError
from ..storage.cache import CachedTask
from .convert import (
    KIND_OF,
    FileScan,
    TypeDriftError,
    examples,
    few_distinct,
    header,
    scan,
    stored_kind,
    write_parquet,
)
from .raw import RawData

PINNABLE = ("int", "float", "bool", "string", "category", "date")

# --- the checks -------------------------------------------------------------------------------


def require_columns(scanned: FileScan, columns: dict[str, str]) -> None:
    """columns maps a column name to the luigi.cfg key that names it."""
    for column, key in columns.items():
        if column not in scanned.columns:
            raise DataError(
                f"{shown(scanned.path)}: no column {column!r} (has {examples(scanned.columns)}); "
                f"set {key} in luigi.cfg [competition]"
            )


def require_convertible(scanned: FileScan) -> None:
    """Every column a number, text or a date (a Parquet file may hold lists, structs or bytes)."""
    other = [c for c, s in scanned.columns.items() if s.kind == "other"]
    if other:
        raise DataError(
            f"{shown(scanned.path)}: columns {examples(other)} are not numbers, text or dates; "
            "rows tables hold those only (keep such columns in a table of their own)"
        )


def require_unique_ids(scanned: FileScan, id_column: str) -> None:
    repeated = scanned.ids.repeats()
    if repeated:
        raise DataError(f"{shown(scanned.path)}: {id_column!r} has repeated ids ({examples(repeated)})")


def require_complete_keys(scanned: FileScan, keys: list[str]) -> None:
    for key in keys:
        missing = scanned.columns[key].missing
        if missing:
            raise DataError(f"{shown(scanned.path)}: {key!r} has {missing} missing values")


def require_same_ids(sample: FileScan, test: FileScan) -> None:
    """The sample's ids are test's: compared as stored, or as text when the two files' id
    columns have different types. The same ids in the same order, as usual, need no lookup."""
    import pyarrow as pa
    import pyarrow.compute as pc

    sample_ids, test_ids = sample.id_values, test.id_values
    if sample_ids.type != test_ids.type:
        sample_ids, test_ids = (pc.cast(ids, pa.string()) for ids in (sample_ids, test_ids))
    if sample_ids.equals(test_ids):
        return
    only_sample = sample_ids.filter(pc.invert(pc.is_in(sample_ids, value_set=test_ids.combine_chunks())))
    only_test = test_ids.filter(pc.invert(pc.is_in(test_ids, value_set=sample_ids.combine_chunks())))
    if len(only_sample) or len(only_test):
        raise DataError(
            f"{shown(sample.path)}: ids do not match {test.path.name} "
            f"({len(only_sample)} only in the sample, e.g. {examples(sorted(only_sample.to_pylist()))}; "
            f"{len(only_test)} only in test, e.g. {examples(sorted(only_test.to_pylist()))})"
        )


def pinned_types(known: list[str], train: Path) -> dict[str, str]:
    """[ingest] column_types, checked: known columns, known kinds."""
    pinned = dict(ingest().column_types)
    for column, kind in pinned.items():
        if column not in known:
            raise ConfigError(f"luigi.cfg [ingest] column_types: no column {column!r} in {train.name}")
        if kind not in PINNABLE:
            raise ConfigError(
                f"luigi.cfg [ingest] column_types: {column!r}: {kind!r} is not one of {', '.join(PINNABLE)}"
            )
    return pinned


def text_in_either(train: FileScan, test: FileScan) -> list[str]:
    """Columns that hold text in one file and only numbers (or dates) in the other."""
    return [
        c
        for c in test.columns
        if c in train.columns
        and None not in (train.columns[c].kind, test.columns[c].kind)
        and (train.columns[c].kind == "text") != (test.columns[c].kind == "text")
    ]


# --- the task ---------------------------------------------------------------------------------


class Ingest(CachedTask):
    """Validated, typed Parquet copies of the train, test and sample_submission tables
    (`train.parquet`, `test.parquet`, `sample_submission.parquet`, whatever the tables' names).

    Its manifest records each column's kind (numeric, category, date) and stored type, so
    features choose their columns without opening the data. When test is the sample itself, the
    test rows are the sample's keys, and only the columns train and test share are features.
    """

    def requires(self) -> RawData:
        return RawData()

    def settings(self) -> dict[str, Any]:
        cfg, options = checked_competition(), ingest()
        # How the sample's keys are read, only when not as the rows' (so that Ingest keeps its hash).
        apart = {"sample_key": "its first column"} if submission_format() != "rows" else {}
        return {
            **apart,
            "id_column": cfg.id_column,
            "target_column": cfg.target_column,
            "tables": table_names(),
            "chunk_mb": options.chunk_mb,
            "compression": options.compression,
            "dictionary_max_values": options.dictionary_max_values,
            "column_types": json.dumps(dict(options.column_types), sort_keys=True),
        }

    def inputs(self) -> dict[str, Path]:
        return {role: table_file(name) for role, name in table_names().items()}

    def build(self) -> dict:
        keys, targets = key_columns(), target_columns()
        paths = self.inputs()
        train_path = paths["train"]
        pinned = pinned_types(header(train_path), train_path)
        heads = [scan(path, pinned) for path in paths.values()]
        self.check_columns(*heads)

        drifted = any(c.kind is None for head in heads[:2] for c in head.columns.values())
        if not drifted:  # types from the first chunks; a later value that does not fit them drifts
            try:
                train, test, sample = self.write(heads, pinned, heads)
            except TypeDriftError as drift:
                if drift.column in pinned:
                    raise DataError(f"{drift}; check luigi.cfg [ingest] column_types") from None
                drifted = True
        if drifted:  # types from every value, then convert again
            whole = [scan(path, pinned, head) for path, head in zip(paths.values(), heads, strict=True)]
            try:
                train, test, sample = self.write(whole, pinned, heads)
            except TypeDriftError as drift:
                raise DataError(f"{drift}; check luigi.cfg [ingest] column_types") from None

        for scanned, complete in ((train, keys), (test, keys), (sample, file_keys(list(sample.columns)))):
            require_complete_keys(scanned, complete)
        for target in targets:
            missing = train.columns[target].missing
            if missing:
                raise DataError(f"{shown(train_path)}: target {target!r} has {missing} missing values")
        self.check_keys(train, test, sample, keys)

        shared = self.shared(train, test)
        types = {c: scanned.kind for c, scanned in train.columns.items()}
        dictionary = [
            c
            for c in shared
            if types[c] == "category" or (types[c] == "string" and few_distinct([train.columns[c], test.columns[c]]))
        ]
        self.facts.update(
            rows={"train": train.rows, "test": test.rows},
            keys=keys,
            tables=table_names(),
            kinds={c: KIND_OF[types[c]] for c in shared if c not in keys},
            schema={"train": types, "sample_submission": {c: s.kind for c, s in sample.columns.items()}},
            dictionary_columns=dictionary,
            date_columns=[c for c in shared if types[c] == "date"],
            types_from="every value" if drifted else "the first chunk",
            text_in_either_file=text_in_either(*heads[:2]) if not drifted else text_in_either(*whole[:2]),
            pinned_types=pinned,
            prediction_columns=[c for c in sample.columns if c not in file_keys(list(sample.columns))],
        )
        return {}

    def check_columns(self, train: FileScan, test: FileScan, sample: FileScan) -> None:
        """The columns the data contract asks for, from the files' headers."""
        keys, targets = key_columns(), target_columns()
        for scanned in (train, test, sample):
            require_convertible(scanned)
        require_columns(train, {**dict.fromkeys(keys, "id_column"), **dict.fromkeys(targets, "target_column")})
        require_columns(test, dict.fromkeys(keys, "id_column"))
        sample_keys = file_keys(list(sample.columns))
        if submission_format() == "rows":
            require_columns(sample, dict.fromkeys(keys, "id_column"))
        expected = [c for c in train.columns if c not in targets]
        test_columns = [c for c in test.columns if c not in targets]
        if not sample_is_test() and set(test_columns) != set(expected):
            only_train = [c for c in expected if c not in test_columns]
            only_test = [c for c in test_columns if c not in expected]
            raise DataError(
                f"{shown(test.path)}: columns differ from {train.path.name} "
                f"(only in train: {examples(only_train) or '-'}; only in test: {examples(only_test) or '-'})"
            )
        if len(sample.columns) <= len(sample_keys):
            raise DataError(f"{shown(sample.path)}: has no prediction column besides {examples(sample_keys)}")
        if sample_is_test() and submission_format() != "rows":
            raise ConfigError(
                f"luigi.cfg [submission] format = {submission_format()} needs test rows of their own: "
                "[competition] test names the sample"
            )

    def check_keys(self, train: FileScan, test: FileScan, sample: FileScan, keys: list[str]) -> None:
        """Each file's keys unique, and the sample's keys test's: a key of one column from what the
        conversion counted; a key of several over the written Parquet, with DuckDB."""
        as_sample = sample_is_test()
        if submission_format() != "rows":  # the sample lists its keys once each; the format lines them up
            self.check_keys_apart(train, test, sample, keys)
            return
        if len(keys) == 1:
            for scanned in (train, sample) if as_sample else (train, test, sample):
                require_unique_ids(scanned, keys[0])
            if not as_sample:
                require_same_ids(sample, test)
            return
        from ..resources.database import connection
        from .keys import require_same_keys, require_unique_keys

        written = {part: self.workdir / f"{part}.parquet" for part in ("train", "test", "sample_submission")}
        with connection(self.threads) as database:
            for part, scanned in (("train", train), ("sample_submission", sample), ("test", test)):
                if part != "test" or not as_sample:
                    require_unique_keys(database, written[part], scanned.path, keys)
            if not as_sample:
                require_same_keys(
                    database, (written["sample_submission"], sample.path), (written["test"], test.path), keys
                )

    def check_keys_apart(self, train: FileScan, test: FileScan, sample: FileScan, keys: list[str]) -> None:
        """For a format other than rows: train's and test's keys unique, and the sample's first column."""
        from ..resources.database import connection
        from .keys import require_unique_keys

        written = {part: self.workdir / f"{part}.parquet" for part in ("train", "test", "sample_submission")}
        with connection(self.threads) as database:
            for part, scanned, unique in (
                ("train", train, keys),
                ("test", test, keys),
                ("sample_submission", sample, file_keys(list(sample.columns))),
            ):
                require_unique_keys(database, written[part], scanned.path, unique)

    def write(self, scans: list[FileScan], pinned: dict[str, str], heads: list[FileScan]) -> list[FileScan]:
        """Train, test and sample_submission as Parquet, with types from the scans (and
        dictionary encoding for the text that repeats in the first chunks, the heads). When test
        is the sample itself, test.parquet holds the sample's keys."""
        keys = key_columns()
        train, test, sample = scans
        expected = self.shared(train, test)
        types = {
            c: pinned.get(c) or stored_kind([train.columns[c], test.columns[c]], may_be_date=c not in keys)
            for c in expected
        }
        types.update(
            {
                c: pinned.get(c) or stored_kind([train.columns[c]], may_be_date=c not in keys)
                for c in train.columns
                if c not in types
            }
        )
        sample_types = {c: stored_kind([s], may_be_date=False) for c, s in sample.columns.items()}
        id_column = keys[0] if len(keys) == 1 else None  # one key column: its ids counted as the file streams
        if submission_format() != "rows":  # keys checked over the Parquet files (check_keys_apart)
            id_column = None
        parts = [
            (types, list(train.columns), "train", False),
            (types, expected, "test", True),
            (sample_types, [*sample_types], "sample_submission", True),
        ]
        return [
            write_parquet(
                head.path,
                kinds,
                columns,
                self.workdir / f"{name}.parquet",
                id_column,
                keep and bool(id_column),
                head.unrepeated,
            )
            for (kinds, columns, name, keep), head in zip(parts, heads, strict=True)
        ]

    def shared(self, train: FileScan, test: FileScan) -> list[str]:
        """The columns of test.parquet, in train's order: train's less the target, or the keys alone
        when test is the sample itself (its prediction columns are not features)."""
        keys, targets = key_columns(), target_columns()
        if sample_is_test():
            return [c for c in train.columns if c in keys]
        return [c for c in train.columns if c not in targets and c in test.columns]

    def read_dictionary(self, name: str) -> list[str]:
        """Text columns with few distinct values load as pandas categoricals."""
        return self.manifest()["facts"]["dictionary_columns"] if name in ("train", "test") else []

    def columns_of(self, kind: str) -> list[str]:
        """Feature columns of one kind ('numeric', 'category', 'date'), from the manifest."""
        return [c for c, k in self.manifest()["facts"]["kinds"].items() if k == kind]

    def keys(self) -> list[str]:
        """The key columns of the rows (from the config, as Ingest checked them)."""
        return key_columns()
