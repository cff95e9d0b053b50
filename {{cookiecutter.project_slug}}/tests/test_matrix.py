"""The feature matrix Train's folds read (training/matrix.py): a small one read once for them all."""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import MODULE

matrix = importlib.import_module(f"{MODULE}.pipeline.training.matrix")

ROWS = 1_000


class FakeFeature:
    """What feature_matrix asks of a feature task: its Parquet file per part, counting the reads."""

    def __init__(self, name: str, folder: Path, frames: dict[str, pd.DataFrame]) -> None:
        self.task_id = self.task_family = name
        self.paths = {}
        for part, frame in frames.items():
            self.paths[part] = folder / f"{name}-{part}.parquet"
            frame.to_parquet(self.paths[part], index=False)
        self.reads: list[str] = []

    @contextlib.contextmanager
    def reading(self, part: str):
        self.reads.append(part)
        yield self.paths[part]

    def load(self, part: str, columns: list[str]) -> pd.DataFrame:
        return pd.read_parquet(self.paths[part], columns=columns)


@pytest.fixture
def features(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, FakeFeature]:
    """Two numeric features (three columns) over ROWS train and ROWS // 2 test rows; the cache
    folder is tmp_path/cache."""
    (tmp_path / "cache").mkdir()
    monkeypatch.setattr(matrix, "cache_dir", lambda: tmp_path / "cache")
    rng = np.random.default_rng(0)

    def frames(columns: list[str]) -> dict[str, pd.DataFrame]:
        sizes = {"train": ROWS, "test": ROWS // 2}
        return {part: pd.DataFrame({c: rng.normal(size=n) for c in columns}) for part, n in sizes.items()}

    a = FakeFeature("A", tmp_path, frames(["a1", "a2"]))
    b = FakeFeature("B", tmp_path, {part: frame.astype({"b": "int64"}) for part, frame in frames(["b"]).items()})
    return {"a1": a, "a2": a, "b": b}


def masks() -> list[np.ndarray]:
    fold = np.arange(ROWS) % 3
    return [fold == k for k in range(3)] + [fold != k for k in range(3)]


def reads(made_by: dict[str, FakeFeature]) -> int:
    return sum(len(task.reads) for task in set(made_by.values()))


def test_a_small_matrix_is_read_once_and_kept_in_an_unnamed_file(
    features, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Within shared_reads, each fold's rows are exactly what a read of its own gives, in one
    C-ordered float64 block; the Parquet files are read once, the train part is kept in a file of
    the cache folder that no name shows and that is closed when the block ends. (The file is read
    back in chunks of 64 rows here, the last one shorter.)"""
    monkeypatch.setattr(matrix._FileBlock, "CHUNK_BYTES", 64 * 3 * 8)
    expected = [matrix.feature_matrix(features, "train", rows) for rows in masks()]
    test_expected = matrix.feature_matrix(features, "test")
    before = reads(features)
    with matrix.shared_reads(cells=ROWS * 3):
        got = [matrix.feature_matrix(features, "train", rows) for rows in masks()]
        test_got = [matrix.feature_matrix(features, "test") for _ in range(2)]
        assert reads(features) - before == 2 * 2 * 2  # each part of each feature: its schema, then its data
        (kept,) = [value for value in matrix._shared.values() if isinstance(value, matrix._FileBlock)]
        assert os.listdir(tmp_path / "cache") == []
        assert os.fstat(kept.file.fileno()).st_size == ROWS * 3 * 8
    assert kept.file.closed and matrix._shared is None
    for frame, want in zip(got, expected, strict=True):
        pd.testing.assert_frame_equal(frame, want)
        assert frame.to_numpy().flags.c_contiguous and list(frame.dtypes) == [np.float64] * 3
    pd.testing.assert_frame_equal(test_got[0], test_expected)
    assert test_got[0] is test_got[1]  # the test part, used whole, is held once in memory


def test_a_cache_folder_that_refuses_the_file_keeps_the_matrix_in_memory(features, monkeypatch: pytest.MonkeyPatch):
    """A full disk costs memory, not the run: the folds get the same rows."""
    expected = [matrix.feature_matrix(features, "train", rows) for rows in masks()]

    def full(**kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(matrix.tempfile, "TemporaryFile", full)
    with matrix.shared_reads(cells=ROWS * 3):
        got = [matrix.feature_matrix(features, "train", rows) for rows in masks()]
        assert not any(isinstance(value, matrix._FileBlock) for value in matrix._shared.values())
    for frame, want in zip(got, expected, strict=True):
        pd.testing.assert_frame_equal(frame, want)


def test_a_large_matrix_is_read_fold_by_fold(features, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(matrix, "SHARED_BYTES", ROWS * 3 * 8)
    before = reads(features)
    with matrix.shared_reads(cells=ROWS * 3):
        for rows in masks()[:2]:
            matrix.feature_matrix(features, "train", rows)
        assert matrix._shared is None
    assert reads(features) - before == 2 * 2 * 2


def test_the_file_is_closed_when_the_block_fails(features):
    with pytest.raises(RuntimeError), matrix.shared_reads(cells=ROWS * 3):
        matrix.feature_matrix(features, "train", masks()[0])
        (kept,) = matrix._shared.values()
        raise RuntimeError("a fold failed")
    assert kept.file.closed and matrix._shared is None


def test_a_matrix_file_cut_short_is_an_error_naming_the_cache_folder(features, tmp_path: Path):
    with matrix.shared_reads(cells=ROWS * 3):
        matrix.feature_matrix(features, "train", masks()[0])
        (kept,) = matrix._shared.values()
        kept.file.truncate(ROWS * 8)
        with pytest.raises(OSError, match="ended early") as error:
            matrix.feature_matrix(features, "train", masks()[1])
    assert str(tmp_path / "cache") in str(error.value)
