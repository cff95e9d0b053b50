"""Raw files that break the data contract stop the run with one line naming the file and the problem."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import pytest
from conftest import MANIFEST, Competition, Pipeline, describe, tiny_dataset

BAD_ID = 99999


@dataclass(frozen=True)
class Case:
    spoil: Callable[[Pipeline, Competition, pd.DataFrame, pd.DataFrame, pd.DataFrame], None]
    subjects: tuple[str, ...]  # the file the message is about: `ERROR: <path>/<file>: ...`
    mentions: Callable[[Competition], list[str]]  # what else the message must say


def missing_id_column(p, comp, train, test, sample):
    p.write_raw(train.drop(columns=[comp.id_column]), test, sample)


def missing_target_column(p, comp, train, test, sample):
    p.write_raw(train.drop(columns=[comp.target_column]), test, sample)


def other_test_columns(p, comp, train, test, sample):
    p.write_raw(train, test.drop(columns=["f_size"]).assign(extra=1.0), sample)


def ids_differ(p, comp, train, test, sample):
    sample = sample.copy()
    sample.loc[0, comp.id_column] = BAD_ID
    p.write_raw(train, test, sample)


def empty_train(p, comp, train, test, sample):
    p.write_raw(train, test, sample)
    (p.raw / "train.csv").write_bytes(b"")


def header_only_test(p, comp, train, test, sample):
    p.write_raw(train, test.iloc[:0], sample)


def latin1_train(p, comp, train, test, sample):
    """A text value in Latin-1 (one byte for é), which is not valid UTF-8."""
    p.write_raw(train, test, sample)
    spoiled = train.assign(f_code=train["f_code"].where(train.index != 7, "café"))
    spoiled.to_csv(p.raw / "train.csv", index=False, encoding="latin-1")


def gzipped_train(p, comp, train, test, sample, spoil: Callable[[bytes], bytes]) -> None:
    """train.csv.gz alone (no train.csv), its compressed bytes spoiled."""
    import gzip

    p.write_raw(train, test, sample)
    plain = p.raw / "train.csv"
    (p.raw / "train.csv.gz").write_bytes(spoil(gzip.compress(plain.read_bytes())))
    plain.unlink()


def truncated_gz_train(p, comp, train, test, sample):
    gzipped_train(p, comp, train, test, sample, lambda data: data[: len(data) // 2])


def corrupt_gz_train(p, comp, train, test, sample):
    gzipped_train(p, comp, train, test, sample, lambda data: data[:200] + bytes(60) + data[260:])


CASES = {
    "missing-id-column": Case(missing_id_column, ("train.csv",), lambda c: [c.id_column]),
    "missing-target-column": Case(missing_target_column, ("train.csv",), lambda c: [c.target_column]),
    "test-columns-differ": Case(other_test_columns, ("test.csv",), lambda c: ["f_size", "extra"]),
    "sample-ids-differ": Case(
        ids_differ, ("sample_submission.csv", "test.csv"), lambda c: ["sample_submission.csv", "test.csv", str(BAD_ID)]
    ),
    "empty-train": Case(empty_train, ("train.csv",), lambda c: ["empty"]),
    "header-only-test": Case(header_only_test, ("test.csv",), lambda c: ["no rows"]),
    "latin1-train": Case(latin1_train, ("train.csv",), lambda c: ["'f_code'", "not UTF-8"]),
    "truncated-gz-train": Case(truncated_gz_train, ("train.csv.gz",), lambda c: ["truncated or damaged"]),
    "corrupt-gz-train": Case(corrupt_gz_train, ("train.csv.gz",), lambda c: ["truncated or damaged"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_raw_data_stops_with_one_error_line(name: str, pipeline: Pipeline, competition: Competition):
    """A broken raw file makes the run exit non-zero with exactly one `ERROR:` line on stderr
    naming the file and the problem, no traceback, no finished Ingest folder, no temporary
    folder left behind and no submission."""
    case = CASES[name]
    case.spoil(pipeline, competition, *tiny_dataset(competition, n_train=60, n_test=20))
    if name == "header-only-test":
        assert (pipeline.raw / "test.csv").read_text().count("\n") == 1

    result = pipeline.run("Submission")

    assert result.returncode != 0, describe(result)
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1, describe(result)
    [error] = errors
    assert any(f"{subject}: " in error for subject in case.subjects), error
    for text in case.mentions(competition):
        assert text in error, error
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, describe(result)
    assert list(pipeline.cache.glob(f"Ingest/*/{MANIFEST}")) == []
    assert [str(p) for p in pipeline.cache.rglob(".tmp-*")] == []
    assert list(pipeline.submissions.iterdir()) == []
