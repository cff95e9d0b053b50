"""The whole pipeline, end to end, on a tiny hand-made competition in its own folders."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import (
    _AWS_UNSET,
    MANIFEST,
    PROJECT,
    Competition,
    Pipeline,
    S3Server,
    describe,
    read_config,
    s3_environment,
    tasks_run,
    tiny_dataset,
    tiny_visits,
    wait_for,
)

PIPELINE_TASKS = {
    "Ingest",
    "Table",
    "Split",
    "NumericColumns",
    "CategoryCodes",
    "DateParts",
    "TargetEncoding",
    "VisitTotals",
    "LastVisit",
    "TrainFold",
    "Train",
    "Submission",
}


@dataclass
class Run:
    pipeline: Pipeline
    first: subprocess.CompletedProcess
    folders_after_first: set[str]
    submissions_after_first: list[str]
    second: subprocess.CompletedProcess
    train: pd.DataFrame
    test: pd.DataFrame
    sample: pd.DataFrame


def on_s3(pipeline: Pipeline, server: S3Server) -> None:
    """Put the pipeline's cache in a new bucket of the test server, its mirror in `pipeline.cache`."""
    import configparser
    import uuid

    import boto3

    environment = s3_environment(server.endpoint, pipeline.root / "aws")
    pipeline.environment.update({**dict.fromkeys(_AWS_UNSET), **environment})
    name = f"cache-{uuid.uuid4().hex[:12]}"
    boto3.session.Session().client(
        "s3", endpoint_url=server.endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=name)  # fmt: skip
    cfg = configparser.ConfigParser()
    cfg.read(pipeline.config_path)
    cfg.set("paths", "cache", f"s3://{name}/pipeline/cache")
    cfg.set("paths", "cache_mirror", str(pipeline.cache))
    with open(pipeline.config_path, "w") as f:
        cfg.write(f)


# TEST_S3_CACHE=0 runs the suite with the local cache only (the template's own suite runs it with
# the cache on S3 in one of its bakes, for time).
CACHES = ["local cache"] + (["cache on S3"] if os.environ.get("TEST_S3_CACHE", "1") != "0" else [])


@pytest.fixture(scope="module", params=CACHES)
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, competition: Competition) -> Run:
    """Submission run twice on the tiny dataset in a fresh root; once with the cache in a local
    folder, once with it on moto's S3 server (then `pipeline.cache` is the local mirror)."""
    pipeline = Pipeline(tmp_path_factory.mktemp("pipeline"))
    if request.param == "cache on S3":
        on_s3(pipeline, request.getfixturevalue("s3_server"))
    train, test, sample = tiny_dataset(competition)
    pipeline.write_raw(train, test, sample, visits=tiny_visits(competition, train, test))
    first = pipeline.run("Submission")
    folders, submissions = pipeline.cache_folders(), sorted(p.name for p in pipeline.submissions.iterdir())
    second = pipeline.run("Submission")
    return Run(pipeline, first, folders, submissions, second, train, test, sample)


@pytest.fixture(scope="module")
def submission(run: Run) -> pd.DataFrame:
    assert run.first.returncode == 0, describe(run.first)
    files = list(run.pipeline.submissions.glob("*.csv"))
    assert len(files) == 1, files
    return pd.read_csv(files[0])


def predictions_of(submission: pd.DataFrame, competition: Competition) -> pd.DataFrame:
    return submission.drop(columns=[competition.id_column])


def done_folder(pipeline: Pipeline, task: str) -> Path:
    folders = pipeline.done_folders(task)
    assert len(folders) == 1, folders
    return folders[0]


def test_submission_runs_every_task_and_reports_the_file(run: Run, competition: Competition):
    """A first run of Submission exits 0 without an error, runs every pipeline task once (TrainFold
    once per fold) and prints the CV score and the path of the file it wrote under submissions/."""
    assert run.first.returncode == 0, describe(run.first)
    assert "ERROR" not in run.first.stderr and "Traceback" not in run.first.stderr
    expected = [*(PIPELINE_TASKS - {"TrainFold"}), *["TrainFold"] * competition.n_folds]
    assert sorted(tasks_run(run.first)) == sorted(expected)
    assert any(line.startswith("CV ") for line in run.first.stdout.splitlines())
    [printed] = [line.removeprefix("Submission: ") for line in run.first.stdout.splitlines() if "Submission: " in line]
    assert Path(printed).resolve().parent == run.pipeline.submissions.resolve()
    assert Path(printed).name == run.submissions_after_first[0]


def test_submission_has_the_sample_columns_and_row_order(run: Run, submission: pd.DataFrame, competition: Competition):
    """The submission has exactly sample_submission's columns, ids and row order (the sample's
    rows are shuffled with respect to test.csv) and no missing value."""
    assert list(submission.columns) == list(run.sample.columns)
    assert submission[competition.id_column].tolist() == run.sample[competition.id_column].tolist()
    assert not submission.isna().any().any()
    assert np.isfinite(predictions_of(submission, competition).to_numpy(dtype="float64")).all()


def test_submission_values_fit_the_problem_type(submission: pd.DataFrame, competition: Competition):
    """Classification: probabilities in [0, 1], multiclass rows summing to 1; every problem
    type: real predictions, not the sample's constant placeholders."""
    predictions = predictions_of(submission, competition)
    if competition.classification:
        assert ((predictions >= 0) & (predictions <= 1)).all().all()
    if competition.problem_type == "multiclass":
        assert len(predictions.columns) >= 3
        np.testing.assert_allclose(predictions.sum(axis=1), 1.0, atol=1e-6)
    assert (predictions.nunique() > 1).all()


def test_train_predicts_exactly_what_a_plain_scikit_learn_loop_over_the_folds_does(run: Run, competition: Competition):
    """The out-of-fold and test predictions of Train (one TrainFold task per fold, each reading only
    its rows) are bit for bit those of one HistGradientBoosting per fold fit on the whole feature
    matrix with boolean masks, as a notebook would write it."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    train = done_folder(run.pipeline, "Train")
    features = json.loads((train / MANIFEST).read_text())["facts"]["features"]  # FEATURES, in order
    x, x_test = (
        pd.concat(
            [pd.read_parquet(done_folder(run.pipeline, name) / f"{part}.parquet").iloc[:, 1:] for name in features],
            axis=1,
        )
        for part in ("train", "test")
    )
    oof, test = (pd.read_parquet(train / f"{part}.parquet") for part in ("oof", "test"))
    columns = [c for c in test.columns if c != competition.id_column]
    y = oof[competition.target_column]
    if competition.classification:
        y = pd.Categorical(y, categories=sorted(y.unique().tolist())).codes
    params = json.loads(read_config()["train"]["model_params"])
    estimator = HistGradientBoostingClassifier if competition.classification else HistGradientBoostingRegressor

    def predict(model, rows: pd.DataFrame) -> np.ndarray:
        if not competition.classification:
            return model.predict(rows)[:, None]
        return model.predict_proba(rows)[:, 1 if competition.problem_type == "binary" else 0 :]

    expected_oof, expected_test = np.zeros((len(x), len(columns))), np.zeros((len(x_test), len(columns)))
    for k in range(competition.n_folds):
        held_out = (oof["fold"] == k).to_numpy()
        model = estimator(categorical_features="from_dtype", random_state=competition.seed, **params)
        model.fit(x[~held_out], y[~held_out])
        expected_oof[held_out] = predict(model, x[held_out])
        expected_test += predict(model, x_test) / competition.n_folds
    assert np.array_equal(oof[columns].to_numpy(), expected_oof)
    assert np.array_equal(test[columns].to_numpy(), expected_test)


def test_a_killed_train_keeps_the_folds_it_finished(tmp_path: Path, run: Run, competition: Competition):
    """SIGKILL of a Train run after its first fold: the next run fits only the folds that were
    missing, and Train's predictions are the same bytes as an uninterrupted run's."""
    pipeline = Pipeline(tmp_path)
    for raw in run.pipeline.raw.glob("*.csv"):  # the same competition, its visits table included
        (pipeline.raw / raw.name).write_bytes(raw.read_bytes())
    assert pipeline.run("Split").returncode == 0
    process = pipeline.start("Train", "--workers", "1")
    deadline = time.monotonic() + 120
    while not pipeline.done_folders("TrainFold") and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.kill()  # one worker: the folds run inside this process
    wait_for(process)
    finished = len(pipeline.done_folders("TrainFold"))
    assert 1 <= finished < competition.n_folds

    rerun = pipeline.run("Train", "--workers", "1")
    assert rerun.returncode == 0, describe(rerun)
    assert tasks_run(rerun).count("TrainFold") == competition.n_folds - finished
    for part in ("oof", "test"):
        resumed = done_folder(pipeline, "Train") / f"{part}.parquet"
        assert resumed.read_bytes() == (done_folder(run.pipeline, "Train") / f"{part}.parquet").read_bytes()


def test_submission_holds_the_model_predictions_by_id(run: Run, submission: pd.DataFrame, competition: Competition):
    """Each submission cell is Train's test prediction for that row's id and that column
    (multiclass: the class the column is named after, whatever the sample's column order)."""
    predicted = pd.read_parquet(done_folder(run.pipeline, "Train") / "test.parquet").set_index(competition.id_column)
    by_id = predicted.reindex(submission[competition.id_column])
    for column in predictions_of(submission, competition).columns:
        source = column if competition.problem_type == "multiclass" else "prediction"
        np.testing.assert_allclose(submission[column].to_numpy(), by_id[source].to_numpy(), rtol=1e-12)


def test_raw_columns_are_typed_and_featurized(run: Run, competition: Competition):
    """Ingest recognizes numbers, strings and ISO dates despite missing values; the string with
    more than 250 values becomes counts, the other one categories shared by train and test,
    and the date becomes date parts."""
    facts = json.loads((done_folder(run.pipeline, "Ingest") / MANIFEST).read_text())["facts"]
    assert facts["kinds"] == {
        "f_size": "numeric",
        "f_count": "numeric",
        "f_color": "category",
        "f_code": "category",
        "f_date": "date",
    }
    codes = done_folder(run.pipeline, "CategoryCodes")
    train_codes, test_codes = (pd.read_parquet(codes / f"{part}.parquet") for part in ("train", "test"))
    assert list(train_codes.columns) == [competition.id_column, "f_color", "f_code_count"]
    assert train_codes["f_color"].dtype == test_codes["f_color"].dtype
    assert isinstance(train_codes["f_color"].dtype, pd.CategoricalDtype)
    dates = pd.read_parquet(done_folder(run.pipeline, "DateParts") / "train.parquet")
    assert any(column.startswith("f_date") for column in dates.columns)
    assert train_codes[competition.id_column].tolist() == run.train[competition.id_column].tolist()
    assert test_codes[competition.id_column].tolist() == run.test[competition.id_column].tolist()


def test_the_example_table_features_aggregate_and_look_up_the_visits(run: Run, competition: Competition):
    """VisitTotals (DuckDB's GROUP BY) and LastVisit (a pandas lookup) give each train and test row
    what pandas computes from the visits table directly."""
    key = competition.id_column
    visits = pd.read_csv(run.pipeline.raw / "visits.csv")
    by_key = visits.groupby(key)
    latest = visits.sort_values("visit_date", kind="stable").drop_duplicates(key, keep="last").set_index(key)
    for part, rows in (("train", run.train), ("test", run.test)):
        totals = pd.read_parquet(done_folder(run.pipeline, "VisitTotals") / f"{part}.parquet")
        assert totals[key].tolist() == rows[key].tolist()
        np.testing.assert_array_equal(totals["visits"], by_key.size().loc[rows[key]])
        np.testing.assert_allclose(totals["visit_amount_mean"], by_key["amount"].mean().loc[rows[key]])
        last = pd.read_parquet(done_folder(run.pipeline, "LastVisit") / f"{part}.parquet")
        np.testing.assert_allclose(last["last_visit_amount"], latest["amount"].loc[rows[key]])
        assert last["last_visit_channel"].astype(str).tolist() == latest["channel"].loc[rows[key]].tolist()


def test_second_run_runs_nothing_and_writes_no_folder(run: Run):
    """Run again on unchanged data, code and config, Submission runs no task and creates no
    cache folder or submission file."""
    assert run.second.returncode == 0, describe(run.second)
    assert [line for line in run.second.stdout.splitlines() if line.startswith("run ")] == []
    assert run.pipeline.cache_folders() == run.folders_after_first
    assert sorted(p.name for p in run.pipeline.submissions.iterdir()) == run.submissions_after_first


def test_the_run_record_ties_the_submission_to_its_train_result(run: Run):
    """The run writes one record (and only one, though it ran twice): it names the submission file,
    whose name carries the run id, with the file's checksum, and the Train folder it came from,
    which holds the permutation importance of every feature column."""
    [path] = sorted((run.pipeline.root / "runs").glob("*.json"))
    record = json.loads(path.read_text())
    submission = run.pipeline.submissions / run.submissions_after_first[0]
    assert record["run_id"] == path.stem and record["run_id"] in submission.name
    assert record["submission"]["sha256"] == hashlib.sha256(submission.read_bytes()).hexdigest()
    train = done_folder(run.pipeline, "Train")
    assert record["tasks"]["Train model=hgb"]["hash"] == train.name
    lock = PROJECT / "requirements.lock"
    assert record["environment"]["lock_sha256"] == hashlib.sha256(lock.read_bytes()).hexdigest()
    importance = pd.read_parquet(train / "importance.parquet")
    columns = json.loads((train / MANIFEST).read_text())["facts"]["n_columns"]
    assert len(importance) == columns and importance["feature"].notna().all()


def test_train_then_submission_gives_one_record_that_names_the_file(pipeline: Pipeline, competition: Competition):
    """`make train` writes the record before there is a submission; the Submission run that
    follows adds the file to that record. The file's name ends with the Submission's own hash,
    so a submission changed under the same Train result never overwrites an earlier file."""
    pipeline.write_raw(*tiny_dataset(competition))
    assert pipeline.run("Train").returncode == 0
    [path] = (pipeline.root / "runs").glob("*.json")
    assert json.loads(path.read_text())["submission"] is None

    result = pipeline.run("Submission")
    assert tasks_run(result) == ["Submission"], describe(result)
    assert sorted((pipeline.root / "runs").glob("*.json")) == [path]
    [submission] = pipeline.submissions.glob("*.csv")
    record = json.loads(path.read_text())
    assert record["submission"]["sha256"] == hashlib.sha256(submission.read_bytes()).hexdigest()
    assert submission.stem.endswith(done_folder(pipeline, "Submission").name[:8])


def test_a_column_that_is_text_in_either_file_is_text_in_both(pipeline: Pipeline, competition: Competition):
    """Codes that look numeric in train (007) but hold letters in test are text in both files,
    as written, so the column has one kind and no zeros are lost."""
    train, test, sample = tiny_dataset(competition)
    train["f_zip"] = [f"{i % 20:03d}" for i in range(len(train))]
    test["f_zip"] = ["A3" if i % 2 else f"{i % 20:03d}" for i in range(len(test))]
    pipeline.write_raw(train, test, sample)
    result = pipeline.run("Ingest")
    assert result.returncode == 0, describe(result)
    folder = pipeline.done_folders("Ingest")[0]
    assert json.loads((folder / MANIFEST).read_text())["facts"]["kinds"]["f_zip"] == "category"
    stored = pd.read_parquet(folder / "train.parquet", columns=["f_zip"])["f_zip"]
    assert stored.tolist()[:3] == ["000", "001", "002"]
    assert "A3" in set(pd.read_parquet(folder / "test.parquet", columns=["f_zip"])["f_zip"])
