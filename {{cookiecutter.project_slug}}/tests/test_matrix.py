"""The feature matrix Train's folds read (training/matrix.py): a small one read once for them all."""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import MODULE

matrix = importlib.import_module(f"{MODULE}.pipeline.training.matrix")

ROWS = 1_000


class FakeFeature:
    """What feature_matrix asks of a feature task: its Parquet file per part, counting the reads."""

    def __init__(self, name: str, folder: Path, frames: dict[str, pd.DataFrame], row_group_size: int) -> None:
        self.task_id = self.task_family = name
        self.paths = {}
        for part, frame in frames.items():
            self.paths[part] = folder / f"{name}-{part}.parquet"
            frame.to_parquet(self.paths[part], index=False, row_group_size=row_group_size)
        self.reads: list[str] = []

    @contextlib.contextmanager
    def reading(self, part: str):
        self.reads.append(part)
        yield self.paths[part]

    def load(self, part: str, columns: list[str]) -> pd.DataFrame:
        return pd.read_parquet(self.paths[part], columns=columns)


def make_features(folder: Path, categories: bool = False) -> dict[str, FakeFeature]:
    """Two features over ROWS train and ROWS // 2 test rows: A's two float columns (one with gaps)
    in row groups of 37 rows, B's integers with gaps (a category instead, when asked) in row groups
    of 100."""
    rng = np.random.default_rng(0)

    def frame(n: int, columns: list[str]) -> pd.DataFrame:
        return pd.DataFrame({c: rng.normal(size=n) for c in columns})

    sizes = {"train": ROWS, "test": ROWS // 2}
    a = {part: frame(n, ["a1", "a2"]) for part, n in sizes.items()}
    for table in a.values():
        table.loc[::7, "a2"] = np.nan
    b = {}
    for part, n in sizes.items():
        values = pd.array(rng.integers(0, 5, n), dtype="Int64")
        values[::11] = pd.NA
        b[part] = pd.DataFrame({"b": values.astype("string").astype("category") if categories else values})
    a_task = FakeFeature("A", folder, a, row_group_size=37)
    return {"a1": a_task, "a2": a_task, "b": FakeFeature("B", folder, b, row_group_size=100)}


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "cache").mkdir()
    monkeypatch.setattr(matrix, "cache_dir", lambda: tmp_path / "cache")
    return tmp_path / "cache"


@pytest.fixture
def features(tmp_path: Path, cache: Path) -> dict[str, FakeFeature]:
    return make_features(tmp_path)


def masks() -> list[np.ndarray]:
    fold = np.arange(ROWS) % 3
    return [fold == k for k in range(3)] + [fold != k for k in range(3)]


def reads(made_by: dict[str, FakeFeature]) -> int:
    return sum(len(task.reads) for task in set(made_by.values()))


def test_a_matrix_of_numbers_is_read_once_and_kept_in_unnamed_files(
    features, cache: Path, monkeypatch: pytest.MonkeyPatch
):
    """Within shared_reads, each fold's rows and the test rows are exactly what a read of their own
    gives (gaps as NaN), in one C-ordered float64 block; the Parquet files are read once, each part
    is kept in a file of the cache folder that no name shows and that is closed when the block ends.
    (The files are written and read back in chunks of 64 rows here, across row groups of 37 and
    100 rows, the last chunk shorter.)"""
    monkeypatch.setattr(matrix._FileBlock, "CHUNK_BYTES", 64 * 3 * 8)
    expected = [matrix.feature_matrix(features, "train", rows) for rows in masks()]
    test_expected = matrix.feature_matrix(features, "test")
    before = reads(features)
    with matrix.shared_reads(cells=10**12):  # numbers go to a file at any size the disk has room for
        got = [matrix.feature_matrix(features, "train", rows) for rows in masks()]
        test_got = [matrix.feature_matrix(features, "test") for _ in range(2)]
        assert reads(features) - before == 2 * 2 * 2  # each part of each feature: its schema, then its data
        kept = list(matrix._shared.values())
        assert [type(value) for value in kept] == [matrix._FileBlock] * 2 and os.listdir(cache) == []
        assert [os.fstat(value.file.fileno()).st_size for value in kept] == [ROWS * 3 * 8, ROWS // 2 * 3 * 8]
    assert all(value.file.closed for value in kept) and matrix._shared is None
    for frame, want in zip([*got, *test_got], [*expected, test_expected, test_expected], strict=True):
        pd.testing.assert_frame_equal(frame, want)
        assert frame.to_numpy().flags.c_contiguous and list(frame.dtypes) == [np.float64] * 3
    assert np.isnan(got[0]["a2"]).any() and np.isnan(got[0]["b"]).any()


@pytest.mark.parametrize("refusal", ["no file", "no room"])
def test_a_disk_that_refuses_the_file_costs_memory_or_reads_not_the_run(
    features, monkeypatch: pytest.MonkeyPatch, refusal: str
):
    """A small matrix is then held in memory for the folds, a large one read fold by fold; the
    folds get the same rows."""
    expected = [matrix.feature_matrix(features, "train", rows) for rows in masks()]
    if refusal == "no file":

        def full(**kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(matrix.tempfile, "TemporaryFile", full)
    else:
        monkeypatch.setattr(matrix.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9, 1000))
    for cells, kept in ((ROWS * 3, pd.DataFrame), (matrix.SHARED_BYTES, type(None))):
        with matrix.shared_reads(cells=cells):
            got = [matrix.feature_matrix(features, "train", rows) for rows in masks()]
            assert [type(value) for value in matrix._shared.values()] == [kept]
        for frame, want in zip(got, expected, strict=True):
            pd.testing.assert_frame_equal(frame, want)


def test_a_matrix_with_categories_is_held_in_memory_when_small_and_read_fold_by_fold_when_large(tmp_path, cache):
    features = make_features(tmp_path, categories=True)
    expected = [matrix.feature_matrix(features, "train", rows) for rows in masks()[:2]]
    assert isinstance(expected[0]["b"].dtype, pd.CategoricalDtype)
    for cells, reads_per_fold in ((ROWS * 3, 0), (matrix.SHARED_BYTES, 2 * 2)):
        with matrix.shared_reads(cells=cells):
            matrix.feature_matrix(features, "train", masks()[0])
            before = reads(features)
            got = [matrix.feature_matrix(features, "train", rows) for rows in masks()[:2]]
            assert reads(features) - before == 2 * reads_per_fold
        for frame, want in zip(got, expected, strict=True):
            pd.testing.assert_frame_equal(frame, want)


def test_the_file_is_closed_when_the_block_fails(features):
    with pytest.raises(RuntimeError), matrix.shared_reads(cells=ROWS * 3):
        matrix.feature_matrix(features, "train", masks()[0])
        (kept,) = matrix._shared.values()
        raise RuntimeError("a fold failed")
    assert kept.file.closed and matrix._shared is None


def test_a_matrix_file_cut_short_is_an_error_naming_the_cache_folder(features, cache: Path):
    with matrix.shared_reads(cells=ROWS * 3):
        matrix.feature_matrix(features, "train", masks()[0])
        (kept,) = matrix._shared.values()
        kept.file.truncate(ROWS * 8)
        with pytest.raises(OSError, match="ended early") as error:
            matrix.feature_matrix(features, "train", masks()[1])
    assert str(cache) in str(error.value)


def test_record_batches_of_any_sizes_are_cut_into_equal_steps():
    """pyarrow gives batches of the asked size here, but need not: the file's chunks stay aligned."""
    import pyarrow as pa

    values = np.arange(18.0)
    sizes, batches, start = [5, 3, 9, 1], [], 0
    for size in sizes:
        batches.append(pa.record_batch({"v": values[start : start + size]}))
        start += size
    tables = list(matrix._in_steps(iter(batches), 4))
    assert [table.num_rows for table in tables] == [4, 4, 4, 4, 2]
    assert np.concatenate([table.column("v").to_numpy() for table in tables]).tolist() == values.tolist()


def test_parts_kept_ahead_are_not_read_again_by_the_folds(features):
    """Train keeps both parts before its folds start; the folds then read no Parquet file."""
    with matrix.shared_reads(cells=ROWS * 3):
        matrix.keep(features, ["train", "test"])
        assert [type(value) for value in matrix._shared.values()] == [matrix._FileBlock] * 2
        before = reads(features)
        matrix.feature_matrix(features, "train", masks()[0]), matrix.feature_matrix(features, "test")
        assert reads(features) == before
