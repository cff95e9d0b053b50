"""The matrix a model fits on: the registered features' columns side by side, for chosen rows.

Only the chosen rows are kept, so fitting a fold holds one copy of its rows (what the estimator
needs) instead of the whole matrix plus a masked copy. Numeric columns share one float64 block in
C order, the layout scikit-learn takes without copying again. Train's folds read each part once
(shared_reads): numbers through an unnamed file of float64 rows, written and read back a few MB
at a time, which spares each fold decoding the Parquet files again (at 2M rows a fold's rows took
1.7 s from Parquet and take 0.16 s from the file).
"""

from __future__ import annotations

import contextlib
import errno
import shutil
import tempfile
import threading
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING

from ..config import cache_dir, key_columns
from ..errors import DataError
from ..resources.memory import return_freed_memory

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ..data.feature import Feature

SHARED_BYTES = 128 << 20  # a matrix with categories smaller than this is held in memory for all the folds
_shared: dict[tuple, pd.DataFrame | _FileBlock | None] | None = None  # while shared_reads() is open
_shared_in_memory = False
_shared_lock = threading.Lock()


@contextlib.contextmanager
def shared_reads(cells: int) -> Iterator[None]:
    """Within the block (Train fitting its folds, in threads of one process), feature_matrix reads
    each part once for all the folds instead of once per fold. A part of numbers only is written
    to a _FileBlock, at any size its disk has room for; a part with categories is held in memory
    when the matrix has fewer than SHARED_BYTES / 8 `cells` (rows x columns), else read fold by
    fold, each fold holding only its own rows."""
    global _shared, _shared_in_memory
    _shared, _shared_in_memory = {}, cells * 8 < SHARED_BYTES
    try:
        yield
    finally:
        blocks, _shared = _shared, None
        for value in blocks.values():
            if isinstance(value, _FileBlock):
                value.close()


class _FileBlock:
    """A part of the matrix, numbers only, as float64 rows in an unnamed file of the cache folder
    (gone when closed, or when the process ends however it ends). It is written and read back a
    few MB of rows at a time, so neither holds the whole matrix: the system keeps the file in its
    page cache, which it can drop and read back under memory pressure, and a fold's read holds its
    rows and one chunk. Two folds fitting side by side thus hold their two copies of rows and no
    third, whole one, and each fold skips decoding the Parquet files again."""

    CHUNK_BYTES = 4 << 20

    def __init__(self, made_by: dict[str, Feature], part: str) -> None:
        import pyarrow.parquet as pq

        files = _files(made_by)
        self.columns = [column for columns in files.values() for column in columns]
        self.lock = threading.Lock()
        with contextlib.ExitStack() as opened:
            parquets = [
                opened.enter_context(pq.ParquetFile(opened.enter_context(task.reading(part)))) for task in files
            ]
            self.shape = (parquets[0].metadata.num_rows, len(self.columns))
            if shutil.disk_usage(cache_dir()).free < 2 * self.shape[0] * self.shape[1] * 8:
                raise OSError(errno.ENOSPC, f"no room for the feature matrix in {cache_dir()}")
            self.file: IO[bytes] = tempfile.TemporaryFile(dir=cache_dir())  # noqa: SIM115 (open until close())
            try:
                self._write(parquets, list(files.values()))
            except BaseException:
                self.file.close()
                raise

    def _write(self, parquets: list, columns: list[list[str]]) -> None:
        import numpy as np
        import pyarrow as pa

        n_rows, n_columns = self.shape
        step = self._step()
        steps = [_in_steps(_row_groups(parquet, names), step) for parquet, names in zip(parquets, columns, strict=True)]
        chunk = np.empty((min(step, n_rows), n_columns))
        for start in range(0, n_rows, step):
            part, at = chunk[: min(step, n_rows - start)], 0
            for tables in steps:
                table = next(tables)
                for values in table.columns:
                    part[:, at] = values.cast(pa.float64(), safe=False).to_numpy()
                    at += 1
            self.file.write(memoryview(part).cast("B"))
        self.file.flush()
        return_freed_memory()  # the decoded batches'

    def _step(self) -> int:
        return max(1, self.CHUNK_BYTES // (8 * self.shape[1]))

    def rows(self, rows: np.ndarray | None) -> pd.DataFrame:
        """The rows where the boolean mask `rows` is true (all when None), as one C-ordered block
        in this process's memory."""
        import numpy as np
        import pandas as pd

        n_rows, n_columns = self.shape
        if rows is None:
            whole = np.empty(self.shape)
            self._read_into(whole, 0)
            return pd.DataFrame(whole, columns=self.columns, copy=False)
        chosen = np.empty((int(np.count_nonzero(rows)), n_columns))
        step = self._step()
        chunk = np.empty((min(step, n_rows), n_columns))
        done = 0
        for start in range(0, n_rows, step):
            part, mask = chunk[: min(step, n_rows - start)], rows[start : start + step]
            self._read_into(part, start * 8 * n_columns)
            count = int(np.count_nonzero(mask))
            np.compress(mask, part, axis=0, out=chosen[done : done + count])
            done += count
        return pd.DataFrame(chosen, columns=self.columns, copy=False)

    def _read_into(self, part: np.ndarray, offset: int) -> None:
        with self.lock:  # the file's position is shared by the folds' threads
            self.file.seek(offset)
            if self.file.readinto(memoryview(part).cast("B")) != part.nbytes:
                raise OSError(f"the feature matrix's file in {cache_dir()} ended early")

    def close(self) -> None:
        self.file.close()


def _row_groups(parquet, columns: list[str]) -> Iterator:
    """The file's record batches, decoded one row group at a time (iter_batches decoded several
    ahead: 250 MB at once for the 2M-row kit's train part, against 50 MB)."""
    for group in range(parquet.num_row_groups):
        yield from parquet.read_row_group(group, columns=columns, use_threads=False).to_batches()


def _in_steps(batches: Iterator, step: int) -> Iterator:
    """Tables of `step` rows (the last one shorter) from record batches of any sizes."""
    import pyarrow as pa

    pending, count = [], 0
    for batch in batches:
        pending.append(batch)
        count += batch.num_rows
        if count >= step:
            table = pa.Table.from_batches(pending)
            while table.num_rows >= step:
                yield table.slice(0, step)
                table = table.slice(step)
            pending, count = table.to_batches(), table.num_rows
    if count:
        yield pa.Table.from_batches(pending)


def feature_columns(features: list[Feature]) -> dict[str, Feature]:
    """Each feature column and the task that makes it, in FEATURES order; checked to be unique
    and numbers or categories (read from the Parquet schemas, no data)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    keys = set(key_columns())
    made_by: dict[str, Feature] = {}
    for task in features:
        with task.reading("train") as path:  # a damaged file: one line naming the result
            schema = pq.read_schema(path)
        for field in schema:
            if field.name in keys:
                continue
            if field.name in made_by:
                raise DataError(
                    f"features {made_by[field.name].task_family} and {task.task_family} both make column {field.name!r}"
                )
            kind = field.type
            if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)) and not (
                pa.types.is_dictionary(kind)
            ):
                raise DataError(
                    f"feature {task.task_family} column {field.name!r} has type {kind}; "
                    "features must be numbers or categories"
                )
            made_by[field.name] = task
    if not made_by:
        raise DataError("no feature columns: FEATURES is empty or every feature made no columns")
    return made_by


def feature_matrix(made_by: dict[str, Feature], part: str, rows: np.ndarray | None = None) -> pd.DataFrame:
    """The `part` table ("train" or "test") of every feature column, only the rows where the
    boolean mask `rows` is true (all rows when None), in Ingest's row order.

    Numbers become float64 (missing values NaN), as scikit-learn would convert them; categories
    stay pandas categoricals, read as `load()` reads them.
    """
    value = _kept(made_by, part) if _shared is not None else None
    if value is None:
        return _read(made_by, part, rows)
    if isinstance(value, _FileBlock):
        return value.rows(rows)
    return _rows_of(value, rows)


def keep(made_by: dict[str, Feature], parts: list[str]) -> None:
    """Within shared_reads, read and keep these parts now (Train, before its folds start: decoding
    the Parquet files then adds to no fold's memory)."""
    for part in parts:
        _kept(made_by, part)


def _kept(made_by: dict[str, Feature], part: str) -> pd.DataFrame | _FileBlock | None:
    """What shared_reads keeps of a part, read on the first call."""
    shared = _shared
    with _shared_lock:  # one fold reads, the other waits for it
        key = (part, tuple((column, task.task_id) for column, task in made_by.items()))
        if key not in shared:
            shared[key] = _shared_copy(made_by, part)
        return shared[key]


def _shared_copy(made_by: dict[str, Feature], part: str) -> pd.DataFrame | _FileBlock | None:
    """What shared_reads keeps of a part: numbers only in a _FileBlock; with categories, or when
    the cache folder's disk cannot take the file, the part read whole into memory if it is small
    (shared_reads' `cells`), else nothing (each fold reads its own rows)."""
    if not _categorical(made_by, part):
        try:
            return _FileBlock(made_by, part)
        except OSError:
            pass
    return _read(made_by, part, None) if _shared_in_memory else None


def _files(made_by: dict[str, Feature]) -> dict[Feature, list[str]]:
    """Each feature task and its columns, in FEATURES order."""
    files: dict[Feature, list[str]] = {}
    for column, task in made_by.items():
        files.setdefault(task, []).append(column)
    return files


def _categorical(made_by: dict[str, Feature], part: str) -> set[str]:
    """The columns of `part` that are categories (dictionary-encoded in their Parquet files)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    categorical = set()
    for task, names in _files(made_by).items():
        with task.reading(part) as path:
            schema = pq.read_schema(path)
        categorical.update(c for c in names if pa.types.is_dictionary(schema.field(c).type))
    return categorical


def _rows_of(whole: pd.DataFrame, rows: np.ndarray | None) -> pd.DataFrame:
    """The chosen rows of a matrix, numbers kept in one C-ordered block (as _read makes them)."""
    import numpy as np
    import pandas as pd

    if rows is None:
        return whole
    if all(dtype == np.float64 for dtype in whole.dtypes):
        return pd.DataFrame(np.compress(rows, whole.to_numpy(), axis=0), columns=whole.columns, copy=False)
    return whole[rows].reset_index(drop=True)


def _read(made_by: dict[str, Feature], part: str, rows: np.ndarray | None) -> pd.DataFrame:
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    files, categorical = _files(made_by), _categorical(made_by, part)
    numeric: dict[str, np.ndarray] = {}
    categories: dict[str, pd.Series] = {}
    block = None
    for task, columns in files.items():
        with task.reading(part) as path, pq.ParquetFile(path) as parquet:
            if block is None:
                n_rows = parquet.metadata.num_rows if rows is None else int(np.count_nonzero(rows))
                # Rows by columns in C order: scikit-learn's binning takes a row sample with
                # ndarray.take, which copies a whole array that is not C-contiguous first.
                block = np.empty((n_rows, len(made_by) - len(categorical)))
            for column in columns:
                if column in categorical:
                    values = task.load(part, columns=[column])[column]
                    categories[column] = values if rows is None else values[rows].reset_index(drop=True)
                    continue
                floats = pc.cast(parquet.read(columns=[column]).column(0), pa.float64(), safe=False)
                floats = floats.to_numpy(zero_copy_only=False)
                numeric[column] = block[:, len(numeric)]
                if rows is None:
                    numeric[column][:] = floats
                else:  # straight into the block: no copy of the chosen rows on the way
                    np.compress(rows, floats, out=numeric[column])
    return_freed_memory()  # the columns' buffers, freed one by one above
    if not categories:
        return pd.DataFrame(block, columns=list(numeric), copy=False)
    return pd.DataFrame({column: numeric.get(column, categories.get(column)) for column in made_by}, copy=False)
