"""The generated pipeline, run through its make targets in baked projects, per problem type."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import BINARY_ONLY, PROBLEM_TYPES, SAME_FOR_EVERY_PROBLEM, completed_folders, left_out, make, tasks_run

ALL_TASKS = {
    "RawData",
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
FOLDS = 5  # the default n_folds: one TrainFold task per fold


def results(cache: Path) -> dict[str, str]:
    """Checksums of the files in the task folders (<Task>/<hash>/*), leaving out Luigi's lock
    files and the input-checksum cache, which hold no results."""
    return {str(p.relative_to(cache)): hashlib.sha256(p.read_bytes()).hexdigest() for p in cache.glob("[!.]*/*/*")}


def submission_of(result) -> Path:
    lines = [line for line in result.stdout.splitlines() if line.startswith("Submission: ")]
    assert len(lines) == 1, result.stdout
    return Path(lines[0].removeprefix("Submission: "))


def package_of(project: Path) -> Path:
    return next((project / "src").iterdir())


class Baked:
    def __init__(self, project: Path, first) -> None:
        self.project, self.first = project, first
        self.submission = project / submission_of(first)
        self.results = results(project / "data" / "cache")

    def copy(self, to: Path) -> Path:
        """A copy of the project after its first run, caches included, to change freely."""
        return Path(shutil.copytree(self.project, to / self.project.name, symlinks=True))


@pytest.fixture(scope="module", params=PROBLEM_TYPES)
def baked(request: pytest.FixtureRequest, bake, tmp_path_factory: pytest.TempPathFactory) -> Baked:
    """A project baked for one problem type, after its first `make all`."""
    project = bake(tmp_path_factory.mktemp(request.param), problem_type=request.param)
    return Baked(project, make(project, "all", environment={"PYTHONWARNINGS": "default"}))


def test_make_all_writes_a_valid_submission(baked: Baked):
    """`make all` runs every task, prints the CV score and the path of a valid submission."""
    assert set(tasks_run(baked.first)) == ALL_TASKS
    assert "CV " in baked.first.stdout
    ours = [line for line in baked.first.stderr.splitlines() if "Warning" in line and "/src/" in line]
    assert ours == [], "the project's code raises warnings (deprecations break later):\n" + "\n".join(ours)
    sample = pd.read_csv(baked.project / "data" / "raw" / "sample_submission.csv")
    submission = pd.read_csv(baked.submission)
    assert list(submission.columns) == list(sample.columns)
    assert submission["id"].tolist() == sample["id"].tolist()
    assert not submission.isna().any().any()
    predictions = submission.drop(columns=["id"])
    if "multiclass" in baked.project.parent.name:
        assert predictions.shape[1] >= 3
        assert ((predictions.sum(axis=1) - 1).abs() < 1e-6).all()
    if "regression" not in baked.project.parent.name:
        assert ((predictions >= 0) & (predictions <= 1)).all().all()


def test_make_models_and_make_blend_train_every_model_on_the_one_split(baked: Baked, tmp_path: Path):
    """`make models` trains every registered model (each in its own Train folder, on the Split that
    make all used); `make blend` weighs them and prints the nested and in-sample CV."""
    project = baked.copy(tmp_path)
    models = make(project, "models")
    trained = [line for line in models.stdout.splitlines() if line.startswith("done  Train model=")]
    assert {line.split()[2] for line in trained} == {"model=linear", "model=lgbm", "model=xgb"}  # hgb: already done
    assert "Split" not in tasks_run(models)
    blended = make(project, "blend", MODELS="hgb linear lgbm xgb")
    assert "Blend (weights) CV" in blended.stdout and "nested" in blended.stdout and "in-sample" in blended.stdout
    submission = make(project, "submission", FROM="blend")
    assert (project / submission_of(submission)).is_file()
    # A run record per model and one for the blend, which names the models' runs.
    records = [json.loads(path.read_text()) for path in (project / "runs").glob("*.json")]
    by_model = {record["model"]: record for record in records if record["model"] != "blend"}
    assert set(by_model) == {"hgb", "linear", "lgbm", "xgb"}
    # Two blends: make blend's of the four models, and the submission's of luigi.cfg's [blend] models.
    blends = {tuple(sorted(r["blend"]["runs"])): r for r in records if r["model"] == "blend"}
    assert set(blends) == {("hgb", "lgbm", "linear", "xgb"), ("hgb", "linear")}
    for record in blends.values():
        assert record["blend"]["method"] == "weights"
        assert {name: by_model[name]["run_id"] for name in record["blend"]["runs"]} == record["blend"]["runs"]
    assert blends[("hgb", "linear")]["submission"] is not None
    make(project, "report")
    report = (project / "reports" / "report.md").read_text()
    assert "Models side by side" in report and "Blend weights (weights" in report
    for record in by_model.values():
        assert record["run_id"] in report
    tuned = make(project, "tune", MODEL="linear", TRIALS="2")
    assert "Tune linear: best CV" in tuned.stdout and set(tasks_run(tuned)) <= {"Tune"}


def test_second_make_all_runs_nothing(baked: Baked, tmp_path: Path):
    """An up-to-date pipeline runs no task and writes nothing to the cache."""
    project = baked.copy(tmp_path)
    again = make(project, "all")
    assert tasks_run(again) == []
    assert results(project / "data" / "cache") == baked.results
    assert submission_of(again) == submission_of(baked.first)


def test_another_seed_writes_a_new_split_and_keeps_the_old(baked: Baked, tmp_path: Path):
    """SEED=7 gives a new Split folder (and downstream results); the seed-42 folders stay as they were."""
    project = baked.copy(tmp_path)
    before = completed_folders(project, "Split")
    seeded = make(project, "all", SEED="7")
    assert {"Split", "Train", "Submission"} <= set(tasks_run(seeded))
    assert "Ingest" not in tasks_run(seeded)
    after = completed_folders(project, "Split")
    assert len(after) == 2 and before < after
    now = results(project / "data" / "cache")
    assert {name: now[name] for name in baked.results} == baked.results
    assert submission_of(seeded) != submission_of(baked.first)


def test_same_seed_gives_byte_identical_submissions(baked: Baked, bake, tmp_path: Path):
    """Two bakes with the same answers produce byte-identical submission files."""
    problem_type = next(p for p in PROBLEM_TYPES if p in baked.project.parent.name)
    other = bake(tmp_path, problem_type=problem_type)
    second = make(other, "all")
    assert (other / submission_of(second)).read_bytes() == baked.submission.read_bytes()


def test_failing_feature_fails_the_run_and_leaves_no_result(baked: Baked, tmp_path: Path):
    """A feature that raises makes `make all` exit non-zero and leaves no finished folder for it."""
    project = baked.copy(tmp_path)
    add_feature(project, "Broken", "        raise ValueError('this feature is broken')\n")
    result = make(project, "all", check=False)
    assert result.returncode != 0
    assert "this feature is broken" in result.stderr
    assert list((project / "data" / "cache" / "Broken").iterdir()) == []
    assert "Submission" not in tasks_run(result)


def add_feature(project: Path, name: str, body: str) -> None:
    """Write features/<name lowercased>.py with a Feature subclass and put it first in FEATURES."""
    package = package_of(project)
    (package / "features" / f"{name.lower()}.py").write_text(
        f"from ..pipeline import Feature\n\n\nclass {name}(Feature):\n    def make(self, df):\n{body}"
    )
    registry = package / "features" / "__init__.py"
    text = registry.read_text().replace(
        "FEATURES = [", f"from .{name.lower()} import {name}  # noqa: E402\n\nFEATURES = [{name},"
    )
    registry.write_text(text)


def test_killed_task_leaves_nothing_that_looks_done(baked: Baked, tmp_path: Path):
    """SIGKILL mid-task leaves no finished folder; the next run completes and clears the debris."""
    project = baked.copy(tmp_path)
    marker = tmp_path / "slow-once"
    marker.touch()
    add_feature(
        project,
        "Slow",
        f"        import pathlib, time\n        if pathlib.Path({str(marker)!r}).exists():\n"
        "            time.sleep(60)\n        return df[[]]\n",
    )
    args = ["make", "-C", str(project), "features", f"VENV={sys.prefix}"]
    with subprocess.Popen(args, stdout=subprocess.PIPE, text=True, start_new_session=True) as running:
        for line in running.stdout:
            if line.startswith("run   Slow"):
                break
        time.sleep(1)
        os.killpg(running.pid, signal.SIGKILL)
    slow = project / "data" / "cache" / "Slow"
    assert completed_folders(project, "Slow") == set()
    assert [p.name for p in slow.iterdir() if not p.name.startswith(".tmp-")] == []

    marker.unlink()
    result = make(project, "features")
    assert tasks_run(result) == ["Slow"]
    assert len(completed_folders(project, "Slow")) == 1
    assert [p.name for p in slow.iterdir() if p.name.startswith(".tmp-")] == []


def test_editing_code_reruns_only_what_depends_on_it(baked: Baked, tmp_path: Path):
    """A comment changes nothing; a code change re-runs that feature and its downstream only."""
    project = baked.copy(tmp_path)
    numeric = package_of(project) / "features" / "numeric.py"
    numeric.write_text(numeric.read_text() + "\n# a comment does not count\n")
    assert tasks_run(make(project, "all")) == []

    numeric.write_text(numeric.read_text().replace('astype("float64")', 'astype("float64").clip(-1e12, 1e12)'))
    rerun = make(project, "all")
    assert sorted(tasks_run(rerun)) == ["NumericColumns", "Submission", "Train", *["TrainFold"] * FOLDS]


def test_new_raw_data_reruns_everything_downstream(baked: Baked, tmp_path: Path):
    """Replacing train.csv re-runs Ingest and all that follows instead of reusing the demo's caches
    (the visits table, unchanged, is not ingested again)."""
    project = baked.copy(tmp_path)
    train = project / "data" / "raw" / "train.csv"
    table = pd.read_csv(train)
    table.iloc[: len(table) - 10].to_csv(train, index=False)
    rerun = make(project, "all")
    assert set(tasks_run(rerun)) == ALL_TASKS - {"RawData", "Table"}


def test_make_all_creates_the_environment_when_missing(bake, tmp_path: Path):
    """On a fresh bake, `make all` alone creates .venv from requirements.lock (with uv, which it installs
    from the registry when it is not on PATH), installs the project and runs the pipeline; the run
    record says the environment was exactly the lock, and `make rerun` that today's is the run's."""
    project = bake(tmp_path, problem_type="regression", n_folds="2")
    result = make(project, "all", VENV=None, UV="")
    assert "Installing requirements.lock with uv" in result.stdout
    assert (project / ".venv" / "bin" / "python").is_file()
    assert (project / submission_of(result)).is_file()
    [record] = [json.loads(p.read_text()) for p in (project / "runs").glob("*.json")]
    lock = hashlib.sha256((project / "requirements.lock").read_bytes()).hexdigest()
    expected = {"lock": "requirements.lock", "lock_sha256": lock, "matches_lock": True, "differences": []}
    assert record["environment"] == expected
    rerun = make(project, "rerun", VENV=None, RUN=record["run_id"])
    assert "Environment: matches the run's" in rerun.stdout and "make install" not in rerun.stdout
    assert tasks_run(make(project, "all", VENV=None)) == []


def test_project_tests_and_lint_pass(baked: Baked):
    """The generated project's own `make test` and `make lint` pass: every test file in the multiclass
    bake but the binary bake's own (conftest.BINARY_ONLY), the files of this problem type's subject in
    the regression bake. A binary project's `make test` runs in tests/test_cruft.py instead, after a
    template update and the user's own features (the suite takes minutes a run)."""
    make(baked.project, "lint")
    name = baked.project.parent.name
    if "binary" in name:
        return
    environment = {"TEST_S3_CACHE": "1" if "multiclass" in name else "0"}  # the suite on S3 once, for time
    environment |= left_out(BINARY_ONLY + (SAME_FOR_EVERY_PROBLEM if "regression" in name else ()))
    result = make(baked.project, "test", environment=environment)
    assert " passed" in result.stdout


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("metric = ", "metric = nonsense\n#"), "metric = 'nonsense'"),
        (("n_folds = ", "n_folds = 1\n#"), "n_folds = 1: need 2 or more"),
    ],
    ids=["metric", "n_folds"],
)
def test_bad_config_value_is_one_error_line(baked: Baked, tmp_path: Path, edit: tuple[str, str], message: str):
    """A bad luigi.cfg value stops `make all` with one ERROR line naming the key, no traceback."""
    project = baked.copy(tmp_path)
    config = project / "luigi.cfg"
    config.write_text(config.read_text().replace(*edit, 1))
    result = make(project, "all", check=False)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1 and "luigi.cfg [competition]" in errors[0] and message in errors[0], result.stderr
    assert "Traceback" not in result.stderr
