"""Ingest streams the raw CSVs in chunks: one schema whatever the chunks hold, pandas' values,
the same bytes on every run. (That memory does not grow with the file is tested by the
template's suite, on a file too large for this one.)"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import MANIFEST, MODULE, Competition, Pipeline, describe, wait_for

SMALL_CHUNK_MB = 0.016  # about 400 rows of the drifting file per chunk
ROWS = 3000


def drifting_files(comp: Competition) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Columns whose look changes after the first chunks: empty at first, integers that later
    miss values, codes that look numeric until a letter appears, booleans, dates, categories."""
    rng = np.random.default_rng(5)
    rows = ROWS + 500
    late_values = rng.normal(0, 1, rows).round(4).astype(object)
    late_values[:1000] = None
    late_missing = rng.integers(0, 50, rows).astype(object)
    late_missing[rng.random(rows) < 0.05] = None
    late_missing[:1500] = rng.integers(0, 50, 1500)  # complete in the first chunks
    codes = np.array([f"{v:05d}" for v in rng.integers(0, 99999, rows)], dtype=object)
    codes[2500] = "A0123"
    days = pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 900, rows), unit="D")
    when = pd.Series(days).dt.strftime("%Y-%m-%d").to_numpy(dtype=object)
    when[rng.random(rows) < 0.1] = None
    frame = pd.DataFrame(
        {
            comp.id_column: np.arange(1, rows + 1),
            "late_values": late_values,
            "late_missing": late_missing,
            "code": codes,
            "flag": rng.choice(["True", "False"], rows),
            "when": when,
            "color": rng.choice(["red", "green", "blue"], rows),
            "text": [f'row {i}, said "hi"' for i in range(rows)],
        }
    )
    train = frame.iloc[:ROWS].assign(**{comp.target_column: rng.integers(0, 2, ROWS)})
    test = frame.iloc[ROWS:].reset_index(drop=True)
    sample = pd.DataFrame({comp.id_column: test[comp.id_column], comp.target_column: 0.5})
    return train, test, sample


@dataclass
class IngestRuns:
    small: Pipeline  # SMALL_CHUNK_MB
    twin: Pipeline  # the same, in another root
    large: Pipeline  # the default chunk size: one chunk per file, compressed with zstd


def ingest_folder(pipeline: Pipeline) -> Path:
    [folder] = pipeline.done_folders("Ingest")
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, competition: Competition) -> IngestRuns:
    files = drifting_files(competition)
    small_chunks = {"ingest": {"chunk_mb": str(SMALL_CHUNK_MB)}}
    pipelines = IngestRuns(
        Pipeline(tmp_path_factory.mktemp("ingest-small"), **small_chunks),
        Pipeline(tmp_path_factory.mktemp("ingest-twin"), **small_chunks),
        Pipeline(tmp_path_factory.mktemp("ingest-large"), ingest={"compression": "zstd"}),
    )
    for pipeline in vars(pipelines).values():
        pipeline.write_raw(*files)
    for result in [wait_for(p.start("Ingest")) for p in vars(pipelines).values()]:
        assert result.returncode == 0, describe(result)
    return pipelines


def test_drifting_types_give_one_schema_and_the_values_of_a_whole_file_read(runs: IngestRuns, competition: Competition):
    """Read in chunks of ~400 rows, each column still gets one type chosen from all its values:
    empty-at-first numbers are floats, integers with a missing value late are integers with
    missing values (floats once loaded, as pandas reads them), codes with a letter late are
    text with their zeros kept; every value equals a whole-file pd.read_csv's."""
    folder = ingest_folder(runs.small)
    parquet = pq.ParquetFile(folder / "train.parquet")
    types = {field.name: str(field.type) for field in parquet.schema_arrow}
    assert types["late_values"] == "double" and types["late_missing"] == "int64"
    assert types["code"] == types["color"] == types["text"] == "string"
    assert types["flag"] == "bool" and types["when"].startswith("timestamp")

    for part in ("train", "test"):
        stored = pd.read_parquet(folder / f"{part}.parquet", read_dictionary=["color"])
        # pandas alone would mix numbers and strings in `code` (and drop the zeros): as text, it is
        # what Ingest stores, as for a column that is text in either file.
        expected = pd.read_csv(runs.small.raw / f"{part}.csv", dtype={"code": "str"})
        expected["when"] = pd.to_datetime(expected["when"], format="ISO8601")
        assert list(stored.columns) == list(expected.columns)
        assert stored["code"].astype(str).str.len().eq(5).all()
        pd.testing.assert_frame_equal(stored, expected, check_dtype=False, check_categorical=False)
    facts = json.loads((folder / MANIFEST).read_text())["facts"]
    assert facts["types_from"] == "every value"
    assert facts["schema"]["train"]["late_missing"] == "int" and facts["schema"]["train"]["late_values"] == "float"
    assert facts["kinds"]["when"] == "date" and facts["kinds"]["code"] == "category"
    assert facts["dictionary_columns"] == ["color"]  # code and text hold thousands of values


def test_ingest_runs_without_pandas(tmp_path: Path, competition: Competition):
    """Ingest reads and writes with Arrow alone: the process Luigi forks for it, at the start of a
    run, would otherwise spend 0.3 s loading pandas first (booleans, dates and integer ids here)."""
    pipeline = Pipeline(tmp_path)
    pipeline.write_raw(*drifting_files(competition))
    run_ingest = textwrap.dedent(f"""
        import sys, luigi
        from {MODULE}.pipeline.main import _run

        @luigi.Task.event_handler(luigi.Event.SUCCESS)
        def ended(task):  # one worker: the task ran in this process
            print("pandas loaded:", "pandas" in sys.modules)

        _run(["--module", "{MODULE}.pipeline.tasks", "Ingest", "--local-scheduler", "--workers", "1"])
    """)
    result = subprocess.run(
        [sys.executable, "-c", run_ingest],
        cwd=tmp_path,
        env=pipeline.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "pandas loaded: False" in result.stdout.splitlines(), describe(result)
    assert ingest_folder(pipeline)


def test_ids_are_read_as_numbers_from_any_slice_of_a_chunk():
    """Ids come from the Arrow buffer, which a slice shares with the whole chunk."""
    import pyarrow as pa

    from {{ cookiecutter.module_name }}.pipeline.data.convert import _int64s

    for kind in (pa.int64(), pa.int32(), pa.uint8()):
        chunk = pa.array([5, 6, 7, 8, 9], kind)
        assert _int64s(chunk.slice(1, 3)).tolist() == [6, 7, 8]
        assert _int64s(chunk.slice(4)).dtype == np.int64


def test_output_is_byte_identical_across_runs(runs: IngestRuns):
    """The same raw files and settings give the same folder name and the same Parquet bytes."""
    first, twin = ingest_folder(runs.small), ingest_folder(runs.twin)
    assert first.name == twin.name
    for name in ("train.parquet", "test.parquet", "sample_submission.parquet"):
        assert (first / name).read_bytes() == (twin / name).read_bytes(), name


def test_values_do_not_depend_on_the_chunk_size(runs: IngestRuns):
    """Small chunks (whose types drift, so every value is scanned first) and one chunk per file
    (types from that chunk) store the same rows, in the same order, with the same types and
    values; only the row groups differ (and the compression: none for small tables by default,
    `[ingest] compression = zstd` in the large run)."""
    small, large = ingest_folder(runs.small), ingest_folder(runs.large)
    types_from = [json.loads((f / MANIFEST).read_text())["facts"]["types_from"] for f in (small, large)]
    assert types_from == ["every value", "the first chunk"]  # both ways of choosing types agree
    for name in ("train.parquet", "test.parquet", "sample_submission.parquet"):
        assert pq.ParquetFile(small / name).schema_arrow == pq.ParquetFile(large / name).schema_arrow
        pd.testing.assert_frame_equal(pd.read_parquet(small / name), pd.read_parquet(large / name))
        for folder, codec in ((small, "UNCOMPRESSED"), (large, "ZSTD")):
            meta = pq.ParquetFile(folder / name).metadata
            assert {meta.row_group(g).column(0).compression for g in range(meta.num_row_groups)} == {codec}, folder
    assert pq.ParquetFile(large / "train.parquet").num_row_groups == 1


def test_gzipped_raw_files_give_the_same_tables(runs: IngestRuns, tmp_path: Path):
    """train.csv.gz, test.csv.gz and sample_submission.csv.gz in place of the CSVs are read as
    they are, giving the tables the plain files give."""
    pipeline = Pipeline(tmp_path)
    for name in ("train.csv", "test.csv", "sample_submission.csv"):
        (pipeline.raw / f"{name}.gz").write_bytes(gzip.compress((runs.large.raw / name).read_bytes()))
    result = pipeline.run("Ingest")
    assert result.returncode == 0, describe(result)
    for name in ("train.parquet", "test.parquet", "sample_submission.parquet"):
        expected = pd.read_parquet(ingest_folder(runs.large) / name)
        pd.testing.assert_frame_equal(pd.read_parquet(ingest_folder(pipeline) / name), expected)


def test_pinned_column_type_is_used(tmp_path: Path, competition: Competition):
    """[ingest] column_types pins a column's type: integers kept as text, with their zeros."""
    pipeline = Pipeline(tmp_path, ingest={"column_types": json.dumps({"late_missing": "string"})})
    pipeline.write_raw(*drifting_files(competition))
    result = pipeline.run("Ingest")
    assert result.returncode == 0, describe(result)
    stored = pd.read_parquet(ingest_folder(pipeline) / "train.parquet", columns=["late_missing"])
    assert not pd.api.types.is_numeric_dtype(stored["late_missing"])


def test_quoted_values_with_line_breaks_span_chunks(tmp_path: Path, competition: Competition):
    """Quoted text holding line breaks, in a file of many small chunks, is read as pd.read_csv
    reads it; Arrow used to stop with "CSV parser got out of sync with chunker"."""
    train, test, sample = drifting_files(competition)
    notes = [f'note {i}\nsecond line, "quoted"\n' if i % 3 else f"note {i}" for i in range(len(train))]
    train = train.assign(notes=notes)
    test = test.assign(notes=[f"a\nb {i}" for i in range(len(test))])
    pipeline = Pipeline(tmp_path, ingest={"chunk_mb": str(SMALL_CHUNK_MB)})
    pipeline.write_raw(train, test, sample)
    assert (pipeline.raw / "train.csv").stat().st_size > 10 * SMALL_CHUNK_MB * 2**20

    result = pipeline.run("Ingest")

    assert result.returncode == 0, describe(result)
    for part in ("train", "test"):
        stored = pd.read_parquet(ingest_folder(pipeline) / f"{part}.parquet", columns=["notes", competition.id_column])
        expected = pd.read_csv(pipeline.raw / f"{part}.csv", usecols=["notes", competition.id_column])
        pd.testing.assert_frame_equal(stored[expected.columns], expected, check_dtype=False)
    assert stored["notes"].str.contains("\n").all()


def test_text_not_in_utf8_late_in_a_file_is_one_error_line(tmp_path: Path, competition: Competition):
    """A Latin-1 value chunks after the first (met while converting, not while choosing the
    types) stops the run with one line naming the file and the column, and leaves no table."""
    train, test, sample = drifting_files(competition)
    pipeline = Pipeline(tmp_path, ingest={"chunk_mb": str(SMALL_CHUNK_MB)})
    pipeline.write_raw(train, test, sample)
    spoiled = train.assign(color=train["color"].where(train.index != 2800, "café"))
    spoiled.to_csv(pipeline.raw / "train.csv", index=False, encoding="latin-1")

    result = pipeline.run("Ingest")

    assert result.returncode != 0, describe(result)
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and "train.csv: column 'color'" in errors[0] and "not UTF-8" in errors[0], describe(result)
    assert "Traceback" not in result.stderr, describe(result)
    assert pipeline.done_folders("Ingest") == [] and list(pipeline.cache.rglob(".tmp-*")) == []


# --- repeated ids -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "kind", "fits"),
    [
        (["1"] * 100 + ["1.5"], "int", False),  # the first values are integers, a later one is not
        (["1"] * 100 + ["1.5"], "float", True),
        (["1.5"] + ["1"] * 100, "int", False),
        (["7"] * 200, "int", True),
        (["true"] * 100 + ["no"], "bool", False),
    ],
)
def test_a_kind_fits_a_column_only_if_it_fits_every_value(values: list[str], kind: str, fits: bool):
    import pyarrow as pa

    from {{ cookiecutter.module_name }}.pipeline.data.convert import _fits

    assert _fits(pa.array(values), kind) is fits


def repeats_of(*chunks: list) -> tuple[list, bool]:
    """The repeats UniqueIds finds in chunks of ids (integers, or text), and whether it kept
    them as a dense range."""
    import pyarrow as pa

    from {{ cookiecutter.module_name }}.pipeline.data.convert import UniqueIds

    ids = UniqueIds()
    for chunk in chunks:
        ids.add(pa.array(chunk))
    return ids.repeats(), ids.seen is not None


@pytest.mark.parametrize(
    ("chunks", "repeats", "dense"),
    [
        (([1, 2, 3], [4, 5]), [], True),
        (([1, 2, 3], [4, 2]), [2], True),  # across chunks
        (([5, 6, 6], [1, 2]), [6], True),  # within a chunk; the range grows downwards
        (([5, 6], [1, 2, 100000000000]), [], False),  # sparse: kept as values
        (([5, 6, 6], ["a", "2"]), [6], False),  # text after numbers
        ((["a", "b"], ["c", "a"]), ["a"], False),
        ((["007", "7"], ["8"]), [], False),  # text that reads as the same number is not repeated
        ((["1", "2"], ["2"]), ["2"], False),
        ((list(range(20, 3000)), [3, 17, 2999, 18], [100000, 17]), [17, 2999], True),
    ],
)
def test_repeated_ids_are_found_in_any_chunk(chunks, repeats, dense):
    """Repeated ids are found within and across chunks, whether the ids are dense integers
    (one bit per possible id) or anything else (kept as values)."""
    assert repeats_of(*chunks) == (repeats, dense)


# --- reading ahead ----------------------------------------------------------------------------


def test_reader_thread_stops_when_the_consumer_fails(tmp_path: Path):
    """A consumer that fails on the first batch, while the reader thread has read the rest of a
    file into a full queue and waits to hand over its end, returns at once with its error, and
    the reader is closed; it used to wait for the reader thread forever."""
    import threading

    import pyarrow.csv as pv

    from {{ cookiecutter.module_name }}.pipeline.data.convert import read_ahead

    path = tmp_path / "small.csv"
    pd.DataFrame({"a": range(2000), "b": [f"value {i}" for i in range(2000)]}).to_csv(path, index=False)
    with pv.open_csv(path, read_options=pv.ReadOptions(block_size=1 << 12)) as reader:
        count = sum(1 for _ in reader)
    assert count > 3
    read_all, closed = threading.Event(), threading.Event()

    def batches():
        try:
            with pv.open_csv(path, read_options=pv.ReadOptions(block_size=1 << 12)) as reader:
                yield from reader
            read_all.set()
        finally:
            closed.set()

    failures = []

    def consume() -> None:
        try:
            for _ in read_ahead(batches(), depth=count - 1):  # the rest of the file fills the queue
                assert read_all.wait(timeout=30)
                raise ValueError("the consumer failed")
        except ValueError as error:
            failures.append(error)

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    consumer.join(timeout=30)
    assert not consumer.is_alive(), "read_ahead waits for its reader thread forever"
    assert [str(f) for f in failures] == ["the consumer failed"] and closed.is_set()
