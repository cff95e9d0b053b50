"""Raw files (CSV, CSV.gz or Parquet) streamed into typed Parquet, in bounded memory.

Each file is read in chunks of [ingest] chunk_mb (a Parquet file, a batch of rows at a time) and
written to Parquet in row groups of ROW_GROUP_ROWS rows, so memory stays near a few chunks whatever
the size of the file. A CSV column's type comes from the values of its first chunk; a later value
that does not fit it raises TypeDriftError, and the caller scans every value (scan with a head) and
converts again. A Parquet file's columns keep their types. A second thread parses each file (and
counts its values) while the main one writes Parquet. Ingest (train, test, sample) and Table (every
other table) both convert through here.
"""

from __future__ import annotations

import functools
import itertools
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from queue import Full, Queue
from typing import TYPE_CHECKING, Any

from ..config import ingest, shown
from ..errors import DataError
from ..storage.parquet import ParquetSink

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
_BOOL_LIKE = f"^({'|'.join(BOOL_VALUES)})$"
# Types a column can have, from the narrowest; a value that does not fit widens the column.
NARROWER = {None: ("int", "float", "bool", "date"), "int": ("int", "float"), "float": ("float",)}
NARROWER.update(bool=("bool",), date=("date",), text=())
# Rows per Parquet row group: chunks are gathered up to this, because every row group adds to the
# file's footer, which readers hold whole (a 3 GB CSV in 1 MB groups would need tens of MB).
# The reader thread reads ahead by more than a group, so writing a group never stalls it.
ROW_GROUP_ROWS = 1 << 15
READ_AHEAD_CHUNKS = 8
_PROBE_VALUES = 64  # values a kind is tried on before the whole column (see _fits)


def examples(values) -> str:
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


def is_parquet(path: Path) -> bool:
    return path.name.lower().endswith(".parquet")


def chunks(path: Path, types: dict[str, Any] | None = None, columns: list[str] | None = None):
    """Record batches of a CSV (or .csv.gz), chunk_mb at a time: every column as text unless
    `types` gives its kind; an unreadable, empty or header-only file is a DataError. A Parquet
    file's batches have its own types, cast to the kinds `types` gives."""
    import pyarrow as pa
    import pyarrow.csv as pv

    if is_parquet(path):
        yield from _parquet_chunks(path, types, columns)
        return

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


def _parquet_chunks(path: Path, types: dict[str, str] | None, columns: list[str] | None):
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rows = 0
    try:
        with pq.ParquetFile(path) as parquet:
            for batch in parquet.iter_batches(batch_size=ROW_GROUP_ROWS, columns=columns):
                if types:
                    arrays = []
                    for name, values in zip(batch.schema.names, batch.columns, strict=True):
                        wanted = types.get(name, values.type)  # a kind, or an Arrow type
                        wanted = _arrow_type(wanted) if isinstance(wanted, str) else wanted
                        try:
                            arrays.append(values if values.type == wanted else pc.cast(values, wanted))
                        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
                            raise DataError(
                                f"{shown(path)}: column {name!r} ({values.type}) does not convert to {wanted} ({error})"
                            ) from None
                    batch = pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)
                rows += batch.num_rows
                if batch.num_rows:
                    yield batch
    except (pa.ArrowInvalid, OSError) as error:
        raise _unreadable_parquet(path, error) from None
    if not rows:
        raise DataError(f"{shown(path)}: has no rows")


def _unreadable_parquet(path: Path, error: Exception) -> DataError:
    message = " ".join(str(error).split())
    return DataError(f"{shown(path)}: not a readable Parquet file ({message}); download or copy it again")


def parquet_kind(kind: pa.DataType) -> str | None:
    """A Parquet column's type as a scan's kind (int, float, bool, date, text), or "other" for
    types the pipeline does not convert (lists, structs, bytes), None for a column of nulls."""
    import pyarrow as pa

    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    checks = (
        (pa.types.is_null, None),
        (pa.types.is_boolean, "bool"),
        (pa.types.is_integer, "int"),
        (lambda t: pa.types.is_floating(t) or pa.types.is_decimal(t), "float"),
        (lambda t: pa.types.is_timestamp(t) or pa.types.is_date(t), "date"),
        (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), "text"),
    )
    return next((name for check, name in checks if check(kind)), "other")


def header(path: Path) -> list[str]:
    """The column names of a CSV file (read from its first chunk) or of a Parquet file."""
    if not path.is_file():
        raise DataError(f"{shown(path)}: file not found; run `make data` or copy the file there")
    stat = path.stat()
    return _header(path, stat.st_size, stat.st_mtime_ns)


def parquet_schema(path: Path) -> pa.Schema:
    """A Parquet file's schema (its footer only); an unreadable file is a DataError."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise _unreadable_parquet(path, error) from None


@functools.cache
def _header(path: Path, size: int, mtime_ns: int) -> list[str]:
    """header(), read once per version of the file (size and mtime are the cache key)."""
    import pyarrow as pa
    import pyarrow.csv as pv

    if is_parquet(path):
        names = parquet_schema(path).names
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise DataError(f"{shown(path)}: repeated column names ({examples(duplicated)})")
        return names
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
        raise DataError(f"{shown(path)}: repeated column names ({examples(duplicated)})")
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
        return pc.all(pc.match_substring_regex(values, _BOOL_LIKE)).as_py()
    if kind == "date" and not pc.all(pc.match_substring_regex(values, _DATE_LIKE)).as_py():
        return False
    try:
        # A value that fails costs the cast about a microsecond (an 8,000-value column of floats
        # tried as integers: 6 ms), and a column that does not fit fails on its first values.
        pc.cast(values[:_PROBE_VALUES], _arrow_type(kind))
        pc.cast(values, _arrow_type(kind))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def _int64s(values: pa.Array):
    """An integer array without nulls as int64 numbers, read from its Arrow buffer:
    Array.to_numpy() would load pandas (0.3 s) in a process that needs none."""
    import numpy as np
    import pyarrow as pa

    values = values.cast(pa.int64())
    return np.frombuffer(values.buffers()[1], dtype=np.int64, count=len(values), offset=8 * values.offset)


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
        import numpy as np
        import pyarrow as pa

        if self.values or not len(ids):
            return None if self.values else np.zeros(0, dtype=np.int64)
        if not pa.types.is_integer(ids.type):
            return None
        numbers = _int64s(ids)
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
    if is_parquet(path):  # its types are known: the first batch only tells which columns hardly repeat
        if head is not None:
            return head
        schema = parquet_schema(path)
        columns = {
            name: ColumnScan(kind=pinned.get(name) or parquet_kind(schema.field(name).type), infer=False, distinct=None)
            for name in names
        }
        batch = next(iter(chunks(path)))
        scanned = Tally(path, columns, None, keep_ids=False).result()
        scanned.unrepeated = {
            name
            for name in names
            if columns[name].kind == "text" and 2 * pc.count_distinct(batch.column(name)).as_py() > batch.num_rows
        }
        return scanned
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


KIND_OF = {"int": "numeric", "float": "numeric", "bool": "numeric", "date": "date", "string": "category"}
KIND_OF["category"] = "category"


# --- the second pass: Parquet -----------------------------------------------------------------


def write_parquet(
    path: Path,
    types: dict[str, str],
    columns: list[str],
    out: Path,
    id_column: str | None,
    keep_ids: bool,
    plain: set[str],
    keep_types: bool = False,
):
    """Convert a raw file to Parquet with the given types (keep_types: a Parquet file's own, text
    stored plain rather than as a dictionary type), in row groups of ROW_GROUP_ROWS rows; return
    what the values held (missing and distinct values, ids). Text columns are dictionary-encoded in
    the file, except those in `plain`."""
    import pyarrow as pa

    if keep_types:
        fields = [parquet_schema(path).field(c) for c in columns]
        kept = [f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f for f in fields]
        schema, cast = pa.schema(kept), {f.name: f.type for f in kept}
    else:
        schema, cast = pa.schema([(c, _arrow_type(types[c])) for c in columns]), types
    # Dictionary-encode text only: Parquet gives it up by itself where the values are too many,
    # but trying it on every number column (or on text that hardly repeats) costs more time
    # than it saves space.
    text = [c for c in columns if types[c] in ("string", "category") and c not in plain]
    counts = Tally(path, {c: ColumnScan(kind=types[c], infer=False) for c in columns}, id_column, keep_ids)
    # The table's size, for `auto` compression: a compressed raw file (.csv.gz, Parquet) holds about
    # a quarter of it.
    size = path.stat().st_size * (1 if path.suffix.lower() == ".csv" else 4)
    with ParquetSink(out, ingest().compression, schema, use_dictionary=text or False, size=size) as sink:
        # The reader thread parses and counts each chunk while this one writes the previous ones.
        group: list[pa.RecordBatch] = []
        rows = 0
        for batch in read_ahead(counts.counted(chunks(path, cast, columns))):
            group.append(batch)
            rows += batch.num_rows
            if rows >= ROW_GROUP_ROWS:
                sink.write(pa.Table.from_batches(group))
                group, rows = [], 0
        if group:
            sink.write(pa.Table.from_batches(group))
    return counts.result()
