"""Ingest: check the raw CSV files against the data contract and store them as typed Parquet.

Each file is streamed in chunks of [ingest] chunk_mb and written to Parquet in row groups of
ROW_GROUP_ROWS rows, so memory stays near a few chunks whatever the size of the file. Column types come from
the first chunk of train and test; if a later chunk does not fit them (a column empty at
first, codes that look numeric until a letter appears), a first pass over every value of the
columns not yet text decides the types and the files are converted again. A second thread
parses each file (and counts its values) while the main one writes Parquet. Train's ids are
checked for repeats with one bit per id when they are integers in a dense range; test's ids
are held to compare with the sample's.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from queue import Full, Queue
from typing import TYPE_CHECKING, Any

from ..config import RAW_FILES, checked_competition, ingest, raw_file, shown
from ..errors import ConfigError, DataError
from ..storage.cache import CachedTask
from .raw import RawData

if TYPE_CHECKING:
    import pyarrow as pa

_DATE_LIKE = r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?"
_EXAMPLES = 3
# pandas' default missing-value markers, so a column reads as it would with pd.read_csv.
NA_VALUES = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
]  # fmt: skip
BOOL_VALUES = ["True", "TRUE", "true", "False", "FALSE", "false"]
# Types a column can have, from the narrowest; a value that does not fit widens the column.
NARROWER = {None: ("int", "float", "bool", "date"), "int": ("int", "float"), "float": ("float",)}
NARROWER.update(bool=("bool",), date=("date",), text=())
PINNABLE = ("int", "float", "bool", "string", "category", "date")
# Rows per Parquet row group: chunks are gathered up to this, because every row group adds to the
# file's footer, which readers hold whole (a 3 GB CSV in 1 MB groups would need tens of MB).
# The reader thread reads ahead by more than a group, so writing a group never stalls it.
ROW_GROUP_ROWS = 1 << 15
READ_AHEAD_CHUNKS = 8


def _examples(values) -> str:
    values = list(values)
    listed = ", ".join(str(v) for v in values[:_EXAMPLES])
    return listed + (", ..." if len(values) > _EXAMPLES else "")


# --- reading in chunks ------------------------------------------------------------------------


def _arrow_type(kind: str) -> pa.DataType:
    import pyarrow as pa

    return {
        "int": pa.int64(),
        "float": pa.float64(),
        "bool": pa.bool_(),
        "date": pa.timestamp("us"),
        "string": pa.string(),
        "category": pa.string(),  # stored as text; loaded as a categorical (Ingest.read_dictionary)
    }[kind]


def _parse_options():
    """Quoted values may hold line breaks, as pd.read_csv reads them: without this, Arrow cuts
    the file into chunks at any line break, and a value spanning one stops the read."""
    import pyarrow.csv as pv

    return pv.ParseOptions(newlines_in_values=True)


def _read_error(path: Path, names: list[str], error: Exception) -> Exception:
    """The error to raise for what Arrow's CSV reader raised: a value that does not convert
    to its column's type drifts (the caller may widen the type); anything else is bad data."""
    column = re.match(r"In CSV column #(\d+): ", str(error))
    name = names[int(column.group(1))] if column and int(column.group(1)) < len(names) else None
    where = f"{shown(path)}: column {name!r}" if name is not None else shown(path)
    if "invalid UTF8" in str(error) or isinstance(error, UnicodeDecodeError):
        return DataError(f"{where}: holds bytes that are not UTF-8 text; save the file as UTF-8")
    if name is not None and re.match(r"In CSV column #\d+: CSV conversion error to (?!string)", str(error)):
        return TypeDriftError(path, name, str(error))
    return DataError(f"{shown(path)}: not a readable CSV file ({error})".replace("\n", " "))


def _damaged(path: Path, error: OSError) -> DataError:
    """A raw file that stops part way (a cut download, a damaged archive), named."""
    what = "compressed file" if path.suffix == ".gz" else "file"
    return DataError(
        f"{shown(path)}: the {what} is truncated or damaged ({error}); download or copy it again".replace("\n", " ")
    )


class TypeDriftError(Exception):
    """A value that does not fit the type chosen for its column from the first chunk."""

    def __init__(self, path: Path, column: str, message: str) -> None:
        super().__init__(f"{shown(path)}: column {column!r}: {message}")
        self.column = column


def chunks(path: Path, types: dict[str, str] | None = None, columns: list[str] | None = None):
    """Record batches of a CSV (or .csv.gz), chunk_mb at a time: every column as text unless
    `types` gives its kind; an unreadable, empty or header-only file is a DataError."""
    import pyarrow as pa
    import pyarrow.csv as pv

    block = max(1 << 14, int(ingest().chunk_mb * (1 << 20)))
    names = header(path)
    convert = pv.ConvertOptions(
        column_types={c: _arrow_type((types or {}).get(c, "string")) for c in names},
        null_values=NA_VALUES,
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        include_columns=columns,
        true_values=BOOL_VALUES[:3],
        false_values=BOOL_VALUES[3:],
    )
    rows = 0
    try:
        with pv.open_csv(
            path, read_options=pv.ReadOptions(block_size=block), parse_options=_parse_options(), convert_options=convert
        ) as reader:
            for batch in reader:
                rows += batch.num_rows
                if batch.num_rows:
                    yield batch
    except (pa.ArrowInvalid, UnicodeDecodeError) as error:
        raise _read_error(path, names, error) from None
    except OSError as error:  # a truncated or corrupt .gz: pyarrow's message names no file
        raise _damaged(path, error) from None
    if not rows:
        raise DataError(f"{shown(path)}: has a header but no rows")


def header(path: Path) -> list[str]:
    """The column names of a CSV file (read from its first chunk)."""
    if not path.is_file():
        raise DataError(f"{shown(path)}: file not found; run `make data` or copy the file there")
    stat = path.stat()
    return _header(path, stat.st_size, stat.st_mtime_ns)


@functools.cache
def _header(path: Path, size: int, mtime_ns: int) -> list[str]:
    """header(), read once per version of the file (size and mtime are the cache key)."""
    import pyarrow as pa
    import pyarrow.csv as pv

    try:
        read = pv.ReadOptions(block_size=1 << 20)
        with pv.open_csv(path, read_options=read, parse_options=_parse_options()) as reader:
            names = reader.schema.names
    except (pa.ArrowInvalid, UnicodeDecodeError) as error:
        if "Empty CSV file" in str(error):
            raise DataError(f"{shown(path)}: file is empty") from None
        raise _read_error(path, [], error) from None
    except OSError as error:
        raise _damaged(path, error) from None
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise DataError(f"{shown(path)}: repeated column names ({_examples(duplicated)})")
    return names


def read_ahead(batches: Iterator, depth: int = READ_AHEAD_CHUNKS) -> Iterator:
    """The batches, parsed by a second thread while this one converts and writes the previous
    ones (Arrow's streaming CSV reader uses one core; both release the GIL). When the consumer
    stops early (an error, or it has seen enough), every put of the reader gives up, so neither
    thread waits for the other forever, and the reader is closed."""
    done = object()
    queue: Queue = Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> None:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.1)
                return
            except Full:
                pass

    def produce() -> None:
        try:
            for batch in batches:
                put(batch)
                if stop.is_set():
                    return
            put(done)
        except BaseException as error:  # handed to the consumer, raised there
            put(error)
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="csv-reader", daemon=True)
    thread.start()
    try:
        while (item := queue.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


# --- the first pass: what each column holds ---------------------------------------------------


@dataclass
class ColumnScan:
    """What one pass over a column found: its narrowest kind, missing values, distinct values."""

    kind: str | None = None  # None: no value seen yet
    infer: bool = True  # False: the kind is known (the values are already converted to it)
    missing: int = 0
    distinct: set | None = field(default_factory=set)  # None once above the dictionary limit

    def add(self, values: pa.Array, limit: int) -> None:
        import pyarrow.compute as pc

        self.missing += values.null_count
        if not self.infer and (self.kind not in ("string", "category") or self.distinct is None):
            return  # the kind is known, and distinct values matter for text only
        present = values.drop_null()
        if len(present) == 0:
            return
        if self.infer:  # the narrowest kind, of those no narrower than the kind so far, that fits
            self.kind = next((kind for kind in NARROWER[self.kind] if _fits(present, kind)), "text")
        if self.distinct is not None:
            self.distinct.update(pc.unique(present).to_pylist())
            if len(self.distinct) > limit:
                self.distinct = None


def _fits(values: pa.Array, kind: str) -> bool:
    import pyarrow as pa
    import pyarrow.compute as pc

    if kind == "bool":
        return pc.all(pc.is_in(values, value_set=pa.array(BOOL_VALUES))).as_py()
    if kind == "date" and not pc.all(pc.match_substring_regex(values, _DATE_LIKE)).as_py():
        return False
    try:
        pc.cast(values, _arrow_type(kind))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


class UniqueIds:
    """The ids seen so far, to find repeats without holding every id.

    Integer ids in a dense range (the usual 0..n or 1..n) cost one bit per possible id, so
    100M rows take 12 MB; any other ids are kept as values, as text (so "007" and "7" differ).
    """

    SPARE = 1 << 20  # room added when the range grows, so it is not reallocated every chunk

    def __init__(self) -> None:
        self.low, self.seen = 0, None  # bit i of seen: id low + i was seen (low a multiple of 8)
        self.values: list[pa.Array] = []  # ids as text, once they are not dense integers
        self.repeated: list = []
        self.count, self.top = 0, 0  # ids added, and 1 + the largest

    @property
    def high(self) -> int:
        return self.low + 8 * len(self.seen)

    def add(self, ids: pa.Array) -> None:
        import numpy as np
        import pyarrow as pa

        ids = ids.drop_null()
        self.count += len(ids)
        numbers = self._dense(ids)
        if numbers is None:
            if self.seen is not None:  # the ids seen so far, as values from now on
                seen = np.flatnonzero(np.unpackbits(self.seen, bitorder="little")) + self.low
                self.values.append(pa.array(seen).cast(pa.string()))
                self.seen = None
            self.values.append(ids.cast(pa.string()))
            return
        if not len(numbers):
            return
        if self.seen is None:
            self.low, self.seen = int(numbers.min()) // 8 * 8, np.zeros(0, dtype=np.uint8)
        low, high = min(self.low, int(numbers.min()) // 8 * 8), max(self.high, int(numbers.max()) + 1)
        if low < self.low or high > self.high:
            grown = np.zeros((high - low) // 8 + 1 + max(self.SPARE, len(self.seen) // 2), dtype=np.uint8)
            grown[(self.low - low) // 8 : (self.low - low) // 8 + len(self.seen)] = self.seen
            self.low, self.seen = low, grown
        self.top = max(self.top, int(numbers.max()) + 1)
        offsets = numbers - self.low
        byte, bit = offsets >> 3, (offsets & 7).astype(np.uint8)
        before = ((self.seen[byte] >> bit) & 1).astype(bool)
        if (offsets[1:] > offsets[:-1]).all():  # increasing, as ids usually are: no repeat within
            again = offsets[before]
        else:
            ordered = np.sort(offsets)
            again = np.concatenate([offsets[before], ordered[1:][ordered[1:] == ordered[:-1]]])
        self.repeated.extend((again[:_EXAMPLES] + self.low).tolist())
        np.bitwise_or.at(self.seen, byte, np.left_shift(np.uint8(1), bit))

    def _dense(self, ids: pa.Array):
        """The ids as int64 numbers when they are an integer array that keeps the range dense,
        else None. Text is never read as numbers: "007" and "7" are different ids."""
        import pyarrow as pa

        if self.values or not len(ids):
            return None if self.values else pa.array([], pa.int64()).to_numpy()
        if not pa.types.is_integer(ids.type):
            return None
        numbers = ids.cast(pa.int64()).to_numpy()
        if not len(numbers):
            return numbers
        low = min(int(numbers.min()), self.low if self.seen is not None else int(numbers.min()))
        high = max(int(numbers.max()) + 1, self.top)
        return numbers if high - low <= 64 * self.count + self.SPARE else None

    def repeats(self) -> list:
        """Some repeated ids (up to a few), or [] when every id is unique."""
        import pyarrow as pa
        import pyarrow.compute as pc

        found = sorted(set(self.repeated))
        if self.values and not found:
            counts = pc.value_counts(pa.chunked_array(self.values, pa.string()))
            found = counts.filter(pc.greater(counts.field("counts"), 1)).field("values").to_pylist()
        return found[: _EXAMPLES + 1]


@dataclass
class FileScan:
    path: Path
    columns: dict[str, ColumnScan]
    rows: int
    ids: UniqueIds
    id_values: pa.ChunkedArray | None  # the id column as stored, for the test and sample files
    # Columns whose first chunk holds mostly distinct values (ids, codes, free text): a Parquet
    # dictionary would not make them smaller, and building one nearly doubles their writing time.
    unrepeated: set[str] = field(default_factory=set)


class Tally:
    """Counts over a file's batches, one batch at a time: each column's missing and distinct
    values (and its kind, where it is inferred), and the file's ids (id_column None: not checked)."""

    def __init__(self, path: Path, columns: dict[str, ColumnScan], id_column: str | None, keep_ids: bool) -> None:
        self.path, self.columns, self.id_column, self.keep_ids = path, columns, id_column, keep_ids
        self.limit = ingest().dictionary_max_values
        self.rows, self.ids, self.kept = 0, UniqueIds(), []

    def add(self, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        for name, scanned in self.columns.items():
            scanned.add(batch.column(name), self.limit)
        if self.id_column in self.columns:
            self.ids.add(batch.column(self.id_column))
            if self.keep_ids:
                self.kept.append(batch.column(self.id_column))

    def counted(self, batches: Iterator) -> Iterator:
        """The batches, each counted on its way: in read_ahead's thread, while this one writes."""
        for batch in batches:
            self.add(batch)
            yield batch

    def result(self) -> FileScan:
        import pyarrow as pa

        kept = pa.chunked_array(self.kept) if self.kept else None
        return FileScan(self.path, self.columns, self.rows, self.ids, kept)


def scan(path: Path, pinned: dict[str, str], head: FileScan | None = None) -> FileScan:
    """The first chunk's values read as text (or every value, given the first chunk's scan,
    the head): each column's narrowest kind. Only the kinds, names and path are used (the
    conversion to Parquet counts the rest), so distinct values and ids are not counted here.
    A whole scan reads only the columns whose kind a value could still change: not the pinned
    ones, nor those already text in the first chunk."""
    import pyarrow.compute as pc

    names = header(path)
    settled = {} if head is None else {c: s.kind for c, s in head.columns.items() if c in pinned or s.kind == "text"}
    columns = {
        name: ColumnScan(kind=pinned.get(name), infer=name not in pinned, distinct=None)
        for name in names
        if name not in settled
    }
    counts = Tally(path, columns, None, keep_ids=False)
    if head is None:
        [batch] = itertools.islice(chunks(path), 1)
        counts.add(batch)
    elif columns:
        for batch in read_ahead(chunks(path, columns=list(columns))):
            counts.add(batch)  # trying the kinds on a chunk while the reader thread parses the next
    scanned = counts.result()
    scanned.columns = {
        name: columns.get(name) or ColumnScan(kind=settled[name], infer=False, distinct=None) for name in names
    }
    if head is None:
        scanned.unrepeated = {
            name for name in names if 2 * pc.count_distinct(batch.column(name)).as_py() > batch.num_rows
        }
    return scanned


# --- the checks -------------------------------------------------------------------------------


def require_columns(scanned: FileScan, columns: dict[str, str]) -> None:
    """columns maps a column name to the luigi.cfg key that names it."""
    for column, key in columns.items():
        if column not in scanned.columns:
            raise DataError(
                f"{shown(scanned.path)}: no column {column!r} (has {_examples(scanned.columns)}); "
                f"set {key} in luigi.cfg [competition]"
            )


def require_unique_ids(scanned: FileScan, id_column: str) -> None:
    missing = scanned.columns[id_column].missing
    if missing:
        raise DataError(f"{shown(scanned.path)}: {id_column!r} has {missing} missing values")
    repeated = scanned.ids.repeats()
    if repeated:
        raise DataError(f"{shown(scanned.path)}: {id_column!r} has repeated ids ({_examples(repeated)})")


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
            f"({len(only_sample)} only in the sample, e.g. {_examples(sorted(only_sample.to_pylist()))}; "
            f"{len(only_test)} only in test, e.g. {_examples(sorted(only_test.to_pylist()))})"
        )


def pinned_types(known: list[str]) -> dict[str, str]:
    """[ingest] column_types, checked: known columns, known kinds."""
    pinned = dict(ingest().column_types)
    for column, kind in pinned.items():
        if column not in known:
            raise ConfigError(f"luigi.cfg [ingest] column_types: no column {column!r} in train.csv")
        if kind not in PINNABLE:
            raise ConfigError(
                f"luigi.cfg [ingest] column_types: {column!r}: {kind!r} is not one of {', '.join(PINNABLE)}"
            )
    return pinned


# --- the schema -------------------------------------------------------------------------------


def stored_kind(scans: list[ColumnScan], may_be_date: bool) -> str:
    """The type a column is stored as, from its scans in one or both files. A column with no
    value is a float column, as pandas reads it; integers keep missing values (pandas loads
    them as floats, as it reads them from CSV)."""
    kinds = {s.kind for s in scans} - {None}
    if not kinds:
        return "float"
    kind = kinds.pop() if len(kinds) == 1 else ("float" if kinds == {"int", "float"} else "text")
    if kind == "date" and not may_be_date:
        return "string"
    return "string" if kind == "text" else kind


def few_distinct(scans: list[ColumnScan]) -> bool:
    """Whether a text column holds at most [ingest] dictionary_max_values distinct values."""
    distinct = [s.distinct for s in scans]
    return all(d is not None for d in distinct) and len(set().union(*distinct)) <= ingest().dictionary_max_values


def text_in_either(train: FileScan, test: FileScan) -> list[str]:
    """Columns that hold text in one file and only numbers (or dates) in the other."""
    return [
        c
        for c in test.columns
        if c in train.columns
        and None not in (train.columns[c].kind, test.columns[c].kind)
        and (train.columns[c].kind == "text") != (test.columns[c].kind == "text")
    ]


KIND_OF = {"int": "numeric", "float": "numeric", "bool": "numeric", "date": "date", "string": "category"}
KIND_OF["category"] = "category"


# --- the second pass: Parquet -----------------------------------------------------------------


def write_parquet(
    path: Path, types: dict[str, str], columns: list[str], out: Path, id_column: str, keep_ids: bool, plain: set[str]
):
    """Convert a CSV to Parquet with the given types, in row groups of ROW_GROUP_ROWS rows;
    return what the values held (missing and distinct values, ids). Text columns are
    dictionary-encoded, except those in `plain`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(c, _arrow_type(types[c])) for c in columns])
    compression = ingest().compression
    # Dictionary-encode text only: Parquet gives it up by itself where the values are too many,
    # but trying it on every number column (or on text that hardly repeats) costs more time
    # than it saves space.
    text = [c for c in columns if types[c] in ("string", "category") and c not in plain]
    counts = Tally(path, {c: ColumnScan(kind=types[c], infer=False) for c in columns}, id_column, keep_ids)
    with pq.ParquetWriter(
        out, schema, compression=None if compression == "none" else compression, use_dictionary=text or False
    ) as writer:
        # The reader thread parses and counts each chunk while this one writes the previous ones.
        group: list[pa.RecordBatch] = []
        rows = 0
        for batch in read_ahead(counts.counted(chunks(path, types, columns))):
            group.append(batch)
            rows += batch.num_rows
            if rows >= ROW_GROUP_ROWS:
                writer.write_table(pa.Table.from_batches(group))
                group, rows = [], 0
        if group:
            writer.write_table(pa.Table.from_batches(group))
    return counts.result()


class Ingest(CachedTask):
    """Validated, typed Parquet copies of train, test and sample_submission.

    Its manifest records each column's kind (numeric, category, date) and stored type, so
    features choose their columns without opening the data.
    """

    def requires(self) -> RawData:
        return RawData()

    def settings(self) -> dict[str, Any]:
        cfg, options = checked_competition(), ingest()
        return {
            "id_column": cfg.id_column,
            "target_column": cfg.target_column,
            "chunk_mb": options.chunk_mb,
            "compression": options.compression,
            "dictionary_max_values": options.dictionary_max_values,
            "column_types": json.dumps(dict(options.column_types), sort_keys=True),
        }

    def inputs(self) -> dict[str, Path]:
        return {name: raw_file(name) for name in RAW_FILES}

    def build(self) -> dict:
        cfg = checked_competition()
        id_col, target = cfg.id_column, cfg.target_column
        paths = self.inputs()
        train_path, test_path, sample_path = (paths[name] for name in RAW_FILES)
        pinned = pinned_types(header(train_path))
        heads = [scan(path, pinned) for path in (train_path, test_path, sample_path)]
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

        for scanned in (train, test, sample):
            require_unique_ids(scanned, id_col)
        missing = train.columns[target].missing
        if missing:
            raise DataError(f"{shown(train_path)}: target {target!r} has {missing} missing values")
        require_same_ids(sample, test)

        expected = [c for c in train.columns if c != target]
        types = {c: scanned.kind for c, scanned in train.columns.items()}
        dictionary = [
            c
            for c in expected
            if types[c] == "category" or (types[c] == "string" and few_distinct([train.columns[c], test.columns[c]]))
        ]
        self.facts.update(
            rows={"train": train.rows, "test": test.rows},
            kinds={c: KIND_OF[types[c]] for c in expected if c != id_col},
            schema={"train": types, "sample_submission": {c: s.kind for c, s in sample.columns.items()}},
            dictionary_columns=dictionary,
            date_columns=[c for c in expected if types[c] == "date"],
            types_from="every value" if drifted else "the first chunk",
            text_in_either_file=text_in_either(*heads[:2]) if not drifted else text_in_either(*whole[:2]),
            pinned_types=pinned,
            prediction_columns=[c for c in sample.columns if c != id_col],
        )
        return {}

    def check_columns(self, train: FileScan, test: FileScan, sample: FileScan) -> None:
        """The columns the data contract asks for, from the files' headers."""
        cfg = checked_competition()
        id_col, target = cfg.id_column, cfg.target_column
        require_columns(train, {id_col: "id_column", target: "target_column"})
        require_columns(test, {id_col: "id_column"})
        require_columns(sample, {id_col: "id_column"})
        expected = [c for c in train.columns if c != target]
        test_columns = [c for c in test.columns if c != target]
        if set(test_columns) != set(expected):
            only_train = [c for c in expected if c not in test_columns]
            only_test = [c for c in test_columns if c not in expected]
            raise DataError(
                f"{shown(test.path)}: columns differ from {train.path.name} "
                f"(only in train: {_examples(only_train) or '-'}; only in test: {_examples(only_test) or '-'})"
            )
        if len(sample.columns) < 2:
            raise DataError(f"{shown(sample.path)}: has no prediction column besides {id_col!r}")

    def write(self, scans: list[FileScan], pinned: dict[str, str], heads: list[FileScan]) -> list[FileScan]:
        """Train, test and sample_submission as Parquet, with types from the scans (and
        dictionary encoding for the text that repeats in the first chunks, the heads)."""
        cfg = checked_competition()
        id_col, target = cfg.id_column, cfg.target_column
        train, test, sample = scans
        expected = [c for c in train.columns if c != target]
        types = {
            c: pinned.get(c) or stored_kind([train.columns[c], test.columns[c]], may_be_date=c != id_col)
            for c in expected
        }
        types[target] = pinned.get(target) or stored_kind([train.columns[target]], may_be_date=False)
        sample_types = {c: stored_kind([s], may_be_date=False) for c, s in sample.columns.items()}
        parts = [
            (types, list(train.columns), "train", False),
            (types, expected, "test", True),
            (sample_types, [*sample_types], "sample_submission", True),
        ]
        return [
            write_parquet(head.path, kinds, columns, self.workdir / f"{name}.parquet", id_col, keep, head.unrepeated)
            for (kinds, columns, name, keep), head in zip(parts, heads, strict=True)
        ]

    def read_dictionary(self, name: str) -> list[str]:
        """Text columns with few distinct values load as pandas categoricals."""
        return self.manifest()["facts"]["dictionary_columns"] if name in ("train", "test") else []

    def columns_of(self, kind: str) -> list[str]:
        """Feature columns of one kind ('numeric', 'category', 'date'), from the manifest."""
        return [c for c, k in self.manifest()["facts"]["kinds"].items() if k == kind]
