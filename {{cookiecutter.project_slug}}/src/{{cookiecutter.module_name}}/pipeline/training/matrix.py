"""The matrix a model fits on: the registered features' columns side by side, for chosen rows.

Columns are read one at a time from the features' Parquet files and only the chosen rows are
kept, so fitting a fold holds one copy of its rows (what the estimator needs) instead of the whole
matrix plus a masked copy. Numeric columns share one float64 block in C order, the layout
scikit-learn takes without copying again.
"""

from __future__ import annotations

import contextlib
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

SHARED_BYTES = 128 << 20  # a train matrix smaller than this is read once for all the folds of a Train
_shared: dict[tuple, pd.DataFrame | _FileBlock] | None = None  # while shared_reads() is open
_shared_lock = threading.Lock()


@contextlib.contextmanager
def shared_reads(cells: int) -> Iterator[None]:
    """Within the block, when the matrix has fewer than SHARED_BYTES / 8 `cells` (rows x columns),
    feature_matrix reads each part whole once and gives each fold its rows from that copy: the folds
    of a small Train (threads of one process) then skip reading the same files again and again. A
    larger matrix is read fold by fold, each fold holding only its own rows.

    A numeric part read for chosen rows (the folds' fitting and held-out rows) is kept in a
    _FileBlock, not in this process's memory, so two folds fitting side by side hold their two
    copies of rows and no third, whole one."""
    global _shared
    if cells * 8 >= SHARED_BYTES:
        yield
        return
    _shared = {}
    try:
        yield
    finally:
        blocks, _shared = _shared, None
        for value in blocks.values():
            if isinstance(value, _FileBlock):
                value.close()


class _FileBlock:
    """A float64 matrix in an unnamed file of the cache folder (gone when closed, or when the
    process ends however it ends), read back a few MB at a time to copy chosen rows out. The system
    keeps the file in its page cache, which it can drop and read back under memory pressure: the
    matrix counts in no process's memory, and a fold's read holds its rows and one chunk."""

    CHUNK_BYTES = 4 << 20

    def __init__(self, matrix: pd.DataFrame) -> None:
        import numpy as np

        block = np.ascontiguousarray(matrix.to_numpy())
        self.columns, self.shape, self.lock = list(matrix.columns), block.shape, threading.Lock()
        self.file: IO[bytes] = tempfile.TemporaryFile(dir=cache_dir())  # noqa: SIM115 (open until close())
        try:
            self.file.write(memoryview(block).cast("B"))
            self.file.flush()
        except BaseException:
            self.file.close()
            raise

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
        step = max(1, self.CHUNK_BYTES // (8 * n_columns))
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
    shared = _shared
    if shared is None:
        return _read(made_by, part, rows)
    with _shared_lock:  # one fold reads, the other waits for it
        key = (part, tuple((column, task.task_id) for column, task in made_by.items()))
        if key not in shared:
            shared[key] = _shared_copy(_read(made_by, part, None), whole=rows is None)
            return_freed_memory()  # the whole part, when it went to a file
        value = shared[key]
    if isinstance(value, _FileBlock):
        return value.rows(rows)
    return _rows_of(value, rows)


def _shared_copy(matrix: pd.DataFrame, whole: bool) -> pd.DataFrame | _FileBlock:
    """What shared_reads keeps of a part: numbers the folds take rows of in a _FileBlock; a part
    first asked for whole (the test rows), or with categories, in memory, as also when the cache
    folder cannot take the file (a full disk: the part is then held as before, at a higher peak)."""
    import numpy as np

    if whole or matrix.empty or not all(dtype == np.float64 for dtype in matrix.dtypes):
        return matrix
    try:
        return _FileBlock(matrix)
    except OSError:
        return matrix


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

    files: dict[Feature, list[str]] = {}
    for column, task in made_by.items():
        files.setdefault(task, []).append(column)
    categorical = set()
    for task, names in files.items():
        with task.reading(part) as path:
            schema = pq.read_schema(path)
        categorical.update(c for c in names if pa.types.is_dictionary(schema.field(c).type))
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
