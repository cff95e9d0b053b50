"""How results are written as Parquet: uncompressed while small, where compressing costs more time
than the disk it saves, compressed once large; the rows and row groups the same either way."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import MODULE

parquet = importlib.import_module(f"{MODULE}.pipeline.storage.parquet")
cache = importlib.import_module(f"{MODULE}.pipeline.storage.cache")

PART_ROWS = 1000  # 8,000 bytes of float64 a part


def parts(count: int) -> list[pa.Table]:
    rng = np.random.default_rng(count)
    text = [f"v{i % 5}" for i in range(PART_ROWS)]
    return [pa.table({"x": rng.normal(size=PART_ROWS), "k": text}) for _ in range(count)]


def codecs(path: Path) -> set[str]:
    meta = pq.ParquetFile(path).metadata
    groups, columns = range(meta.num_row_groups), range(meta.num_columns)
    return {meta.row_group(g).column(c).compression for g in groups for c in columns}


@pytest.fixture
def small_below(monkeypatch) -> int:
    """SMALL_FILE_BYTES of five parts: a file of more parts is large."""
    limit = 5 * parts(1)[0].nbytes
    monkeypatch.setattr(parquet, "SMALL_FILE_BYTES", limit)
    return limit


@pytest.mark.parametrize(("count", "expected"), [(3, {"UNCOMPRESSED"}), (9, {"SNAPPY"})])
def test_auto_compresses_a_file_only_once_it_is_large(tmp_path: Path, small_below: int, count: int, expected: set[str]):
    """Up to SMALL_FILE_BYTES the parts are held back and written plain; past it every row group is
    snappy-compressed, the held ones too. Each part is its own row group, in order, either way."""
    path, written = tmp_path / "t.parquet", parts(count)
    with parquet.ParquetSink(path) as sink:
        for part in written:
            sink.write(part)
    assert codecs(path) == expected
    assert sink.rows == count * PART_ROWS
    assert pq.ParquetFile(path).num_row_groups == count
    assert pq.read_table(path).equals(pa.concat_tables(written))
    assert pq.ParquetFile(path).metadata.row_group(0).column(1).has_dictionary_page  # text dictionary-encoded


def test_auto_follows_an_expected_size_when_given(tmp_path: Path, small_below: int):
    """Ingest knows its table's size from the raw file's: it then holds nothing back, and the size
    it gives decides, whatever it writes."""
    for size, count, expected in ((small_below, 9, {"UNCOMPRESSED"}), (small_below + 1, 1, {"SNAPPY"})):
        path = tmp_path / f"{size}.parquet"
        with parquet.ParquetSink(path, size=size) as sink:
            for part in parts(count):
                sink.write(part)
                assert not sink._held
        assert codecs(path) == expected, size


@pytest.mark.parametrize(("codec", "expected"), [("zstd", "ZSTD"), ("none", "UNCOMPRESSED"), ("snappy", "SNAPPY")])
def test_a_named_codec_is_used_whatever_the_size(tmp_path: Path, small_below: int, codec: str, expected: str):
    for count in (1, 9):
        path = tmp_path / f"{codec}-{count}.parquet"
        with parquet.ParquetSink(path, codec) as sink:
            for part in parts(count):
                sink.write(part)
        assert codecs(path) == {expected}, count


def test_an_unknown_codec_is_refused(tmp_path: Path):
    with pytest.raises(ValueError, match=r"'brotli'.*auto, snappy"):
        parquet.ParquetSink(tmp_path / "t.parquet", "brotli")


def test_a_failed_write_of_a_small_file_leaves_no_file(tmp_path: Path):
    """The held-back parts are not written when the block fails (the task's folder is dropped anyway)."""
    path = tmp_path / "t.parquet"
    with pytest.raises(RuntimeError), parquet.ParquetSink(path) as sink:
        sink.write(parts(1)[0])
        raise RuntimeError("the build failed")
    assert not path.exists()


class Streamed(cache.CachedTask):
    """A task whose table comes a DataFrame at a time, as a row-wise feature's does."""

    count = 0

    def build(self) -> dict:
        return {"rows": (part.to_pandas() for part in parts(self.count))}


class Whole(cache.CachedTask):
    count = 0

    def build(self) -> dict:
        return {"rows": pa.concat_tables(parts(self.count)).to_pandas()}


@pytest.mark.parametrize("task", [Streamed, Whole])
def test_a_tasks_tables_follow_the_rule(luigi_config, tmp_path: Path, small_below: int, monkeypatch, task):
    """store(): a small result is plain, a large one snappy, the rows counted in its manifest either way."""
    luigi_config("paths", "cache", tmp_path / "cache")
    for count, expected in ((2, {"UNCOMPRESSED"}), (9, {"SNAPPY"})):
        monkeypatch.setattr(task, "count", count)
        monkeypatch.setattr(cache, "code_hash", lambda cls, count=count: f"code {count}")  # a new result each
        done = task()
        done.store(1)
        folder = done.done_folder()
        assert codecs(folder / "rows.parquet") == expected, count
        assert done.manifest()["files"]["rows.parquet"]["rows"] == count * PART_ROWS
        pd.testing.assert_frame_equal(done.load("rows"), pa.concat_tables(parts(count)).to_pandas(), check_dtype=False)
