"""The model registry, seeds, Blend and Tune, on a tiny competition."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import MANIFEST, MODULE, PROJECT, TIMEOUT, Competition, Pipeline, describe, tasks_run, tiny_dataset

models = importlib.import_module(f"{MODULE}.models")
blend = importlib.import_module(f"{MODULE}.pipeline.training.blend")
registry = importlib.import_module(f"{MODULE}.pipeline.registry")
errors = importlib.import_module(f"{MODULE}.pipeline.errors")

MODELS = [m.name for m in models.MODELS]  # every registered model: requirements.lock installs them all
# Few rounds and no permutation importance: the tests check the plumbing, not the models' quality.
SMALL = {
    "train": {"model_params": json.dumps({"max_iter": 30}), "importance_repeats": "0"},
    "model.lgbm": {"params": json.dumps({"n_estimators": 30, "verbose": -1})},
    "model.xgb": {"params": json.dumps({"n_estimators": 30})},
}
FEATURE_TASKS = ("NumericColumns", "CategoryCodes", "DateParts", "TargetEncoding")


def manifest(folder: Path) -> dict:
    return json.loads((folder / MANIFEST).read_text())


def train_folder(pipeline: Pipeline, model: str) -> Path:
    (folder,) = [f for f in pipeline.done_folders("Train") if manifest(f)["params"]["model"] == model]
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, competition: Competition) -> tuple[Pipeline, Pipeline]:
    """Two isolated pipelines with the same data and seed, each after `Models` (every registered model)."""
    runs = []
    for name in ("a", "b"):
        config = {**SMALL, "train": {**SMALL["train"], "models": json.dumps(MODELS)}}
        pipeline = Pipeline(tmp_path_factory.mktemp(f"models-{name}"), **config)
        pipeline.write_raw(*tiny_dataset(competition))
        result = pipeline.run("Submission")  # [train] models: make all trains them all
        assert result.returncode == 0, describe(result)
        runs.append(pipeline)
    return runs[0], runs[1]


@pytest.mark.parametrize("model", MODELS)
def test_each_model_trains_byte_identically_for_the_same_seed(trained, model: str):
    """Each model's out-of-fold and test predictions are the same bytes in two runs with one seed."""
    first, second = (train_folder(pipeline, model) for pipeline in trained)
    for name in ("oof.parquet", "test.parquet"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    facts = manifest(first)["facts"]
    assert facts["model"] == model and np.isfinite(facts["cv_score"])


@pytest.fixture(scope="module")
def marked(tmp_path_factory: pytest.TempPathFactory, competition: Competition) -> tuple[Pipeline, pd.DataFrame]:
    """A pipeline whose features are built, on data with an `f_row` column (1,000,000 + the row
    number) that follows each row into the feature matrix; hgb stops early on its own rows."""
    stops_early = {"early_stopping": True, "validation_fraction": 0.25, "n_iter_no_change": 3, "max_iter": 40}
    pipeline = Pipeline(tmp_path_factory.mktemp("marked"), **{"model.hgb": {"params": json.dumps(stops_early)}})
    train, test, sample = tiny_dataset(competition)
    train["f_row"] = 1_000_000.0 + np.arange(len(train))
    test["f_row"] = 1_000_000.0 + len(train) + np.arange(len(test))
    pipeline.write_raw(train, test, sample)
    result = pipeline.run("Features")
    assert result.returncode == 0, describe(result)
    (split,) = pipeline.done_folders("Split")
    folds = pd.read_parquet(split / "folds.parquet")
    return pipeline, train[[competition.id_column]].merge(folds, on=competition.id_column, validate="one_to_one")


@pytest.mark.parametrize("model", MODELS)
def test_no_early_stopping_row_is_a_validation_row(marked, model: str, tmp_path: Path):
    """Each fit of a fold sees exactly the other folds' rows; no eval_set and no row a model holds
    out for early stopping (hgb's validation_fraction) is a row of the fold being scored. lgbm and
    xgb train a fixed number of rounds: no eval_set, no early-stopping rounds."""
    pipeline, folds = marked
    fold = 1
    held_out = set(np.flatnonzero(folds["fold"].to_numpy() == fold).tolist())
    fitting = set(range(len(folds))) - held_out
    out = tmp_path / "seen.json"
    command = [sys.executable, str(PROJECT / "tests" / "spy_fit.py"), model, str(fold), str(out)]
    env = pipeline.env()
    result = subprocess.run(command, cwd=pipeline.root, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, describe(result)
    seen = json.loads(out.read_text())
    assert seen["fit"] and all(set(rows) == fitting for rows in seen["fit"])
    for rows in seen["eval_set"] + seen["early_stopping"]:
        assert rows and not set(rows) & held_out and set(rows) <= fitting
    if model == "hgb":
        assert seen["early_stopping"], "hgb did not stop early: the test would check nothing"
    else:
        assert not seen["eval_set"] and not seen["early_stopping"]
        assert all(params.get("early_stopping_rounds", "None") == "None" for params in seen["params"])


def test_models_differ_and_each_has_its_own_folder(trained):
    """Every registered model has a Train folder of its own, with predictions of its own."""
    pipeline = trained[0]
    folders = {model: train_folder(pipeline, model) for model in MODELS}
    assert len(set(folders.values())) == len(MODELS) >= 2
    oofs = [pd.read_parquet(folder / "oof.parquet").iloc[:, -1].to_numpy() for folder in folders.values()]
    assert not np.allclose(oofs[0], oofs[1])


HIDDEN_PACKAGES = {
    "not installed": 'raise ModuleNotFoundError("No module named {name!r}")\n',
    "no OpenMP": "raise OSError('libgomp.so.1: cannot open shared object file: No such file or directory')\n",
}


@pytest.mark.parametrize(
    ("package", "task", "why", "expected"),
    [
        ("lightgbm", ["Train", "--model", "lgbm"], "not installed", "run make install (requirements.lock has it)"),
        ("xgboost", ["Train", "--model", "xgb"], "not installed", "run make install (requirements.lock has it)"),
        ("optuna", ["Tune", "--model", "linear", "--trials", "1"], "not installed", "make tune needs the optuna"),
        ("lightgbm", ["Train", "--model", "lgbm"], "no OpenMP", "apt-get install libgomp1"),
    ],
)
def test_a_package_that_cannot_be_imported_is_one_error_line(
    tmp_path: Path, competition: Competition, package: str, task: list[str], why: str, expected: str
):
    """A model (or make tune) whose package is missing from this environment, or cannot load the system
    library it needs, stops with one line saying how to fix it."""
    hidden = tmp_path / "hidden" / package
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text(HIDDEN_PACKAGES[why].format(name=package))
    pipeline = Pipeline(tmp_path / "run")
    pipeline.write_raw(*tiny_dataset(competition))
    env = pipeline.env()
    pipeline.env = lambda: {**env, "PYTHONPATH": f"{hidden.parent}:{env['PYTHONPATH']}"}
    result = pipeline.run(*task)
    assert result.returncode != 0
    errors_ = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors_) == 1 and expected in errors_[0], describe(result)
    assert "Traceback" not in result.stderr


def test_a_package_outside_the_lock_says_to_add_it():
    """A user's model needing a package the lock does not pin is told to add it to the dependencies."""
    with pytest.raises(errors.ConfigError, match=r"add it to pyproject.toml's dependencies, then run make lock"):
        errors.imported("no_such_package_for_this_test", "model 'mine'")
    assert errors.imported("json", "model 'mine'") is json


@pytest.mark.parametrize("problem_type", ["binary", "regression"])
def test_the_model_stub_fits_numbers_with_gaps_and_categories(problem_type: str):
    """models/stub.py, copied as it stands, fits the matrix Train gives it: float64 with NaN and
    pandas categoricals (a category unseen in fitting is predicted too)."""
    stub = importlib.import_module(f"{MODULE}.models.stub").MyModel()
    rng = np.random.default_rng(0)
    x = pd.DataFrame(
        {
            "number": np.where(rng.random(60) < 0.2, np.nan, rng.normal(size=60)),
            "kind": pd.Categorical(rng.choice(["a", "b", None], 60), categories=["a", "b", "c"]),
        }
    )
    y = rng.integers(0, 2, 60)
    fitted = stub.estimator(problem_type, {"n_estimators": 5}, 0, 1).fit(x.iloc[:50], y[:50])
    unseen = x.iloc[50:].assign(kind=pd.Categorical(["c"] * 10, categories=["a", "b", "c"]))
    assert len(fitted.predict(unseen)) == 10


def test_an_unknown_model_is_one_error_line(tmp_path: Path, competition: Competition):
    pipeline = Pipeline(tmp_path)
    pipeline.write_raw(*tiny_dataset(competition))
    result = pipeline.run("Train", "--model", "nosuch")
    assert result.returncode != 0 and "ERROR: no model named 'nosuch'" in result.stderr, describe(result)


def test_seeds_are_averaged_and_recorded(tmp_path: Path, competition: Competition):
    """[train] seeds fits each fold once per seed; the facts and run record list the seeds."""
    pipeline = Pipeline(tmp_path, **{**SMALL, "train": {**SMALL["train"], "seeds": "[1, 2]"}})
    pipeline.write_raw(*tiny_dataset(competition))
    result = pipeline.run("Submission")
    assert result.returncode == 0, describe(result)
    (folder,) = pipeline.done_folders("Train")
    assert manifest(folder)["facts"]["seeds"] == [1, 2]
    (record,) = (tmp_path / "runs").glob("*.json")
    assert json.loads(record.read_text())["seeds"] == [1, 2]


def test_blend_weights_sum_to_one_and_beat_the_best_single_model_in_sample(trained, competition: Competition):
    """Blend over the trained models: weights >= 0 summing to 1, in-sample CV at least the best
    model's, the nested CV reported beside it."""
    pipeline = trained[0]
    result = pipeline.run("Blend", "--models", json.dumps(MODELS))
    assert result.returncode == 0, describe(result)
    assert "nested" in result.stdout and "in-sample" in result.stdout
    (folder,) = pipeline.done_folders("Blend")
    facts = manifest(folder)["facts"]
    weights = np.array(list(facts["weights"].values()))
    assert (weights >= 0).all() and weights.sum() == pytest.approx(1.0)
    sign = 1 if facts["greater_is_better"] else -1
    best = max(sign * score for score in facts["model_cv_scores"].values())
    assert sign * facts["cv_score_in_sample"] >= best - 1e-12
    scores = pd.read_parquet(folder / "scores.parquet")
    assert list(scores.columns) == ["fold", "in_sample", "nested"]
    assert np.isfinite(facts["cv_score"])


def test_stack_blend_reports_nested_and_in_sample_cv(trained, competition: Competition):
    """[blend] method = stack: a level-2 model over the models' out-of-fold predictions, its nested
    CV (fit on the other folds) and in-sample CV in the facts, its coefficients in a table, and
    each model's share of them summing to 1."""
    pipeline = trained[1]
    result = pipeline.run("Blend", "--models", json.dumps(MODELS), "--blend-method", "stack")
    assert result.returncode == 0, describe(result)
    assert "Blend (stack)" in result.stdout
    (folder,) = pipeline.done_folders("Blend")
    facts = manifest(folder)["facts"]
    assert facts["method"] == "stack" and np.isfinite(facts["cv_score"]) and np.isfinite(facts["cv_score_in_sample"])
    assert sum(facts["weights"].values()) == pytest.approx(1.0)
    coefficients = pd.read_parquet(folder / "coefficients.parquet")
    assert {f"{model}:" for model in MODELS} == {column.split(":")[0] + ":" for column in coefficients.columns[1:]}
    test = pd.read_parquet(folder / "test.parquet")
    assert test.drop(columns=competition.id_column).notna().all().all()


@pytest.mark.parametrize("problem_type", ["binary", "multiclass", "regression"])
def test_the_stack_predicts_each_fold_from_a_fit_on_the_other_folds(problem_type: str):
    """Changing one fold's targets leaves that fold's nested predictions as they were (its rows
    were not fitted on), while the in-sample fit, which sees every row, changes."""
    rng = np.random.default_rng(0)
    n, classes = 600, 3 if problem_type == "multiclass" else 2
    fold = np.arange(n) % 5
    if problem_type == "regression":
        y = rng.normal(size=n)
        oof = np.stack([y + rng.normal(0, s, n) for s in (0.5, 1.0)])[:, :, None]
    else:
        y = rng.integers(0, classes, n)
        logits = np.stack([np.eye(classes)[y] * 2 + rng.normal(0, s, (n, classes)) for s in (1.0, 2.0)])
        proba = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
        oof = proba[:, :, 1:] if problem_type == "binary" else proba
    changed = y.copy()
    changed[fold == 0] = y[fold == 0][::-1]
    first = blend.stacked(oof, oof[:, :50], y, fold, problem_type, 5)
    second = blend.stacked(oof, oof[:, :50], changed, fold, problem_type, 5)
    assert np.array_equal(first[1][fold == 0], second[1][fold == 0])
    assert not np.array_equal(first[1][fold == 1], second[1][fold == 1])
    assert not np.array_equal(first[0], second[0])
    assert first[1].shape == oof[0].shape and first[2].shape == oof[:, :50][0].shape


def test_greedy_weights_beat_each_model_on_models_that_differ():
    """Two noisy views of one signal: the blend beats both, and the weights sum to 1."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    views = np.stack([y + rng.normal(0, 1.5, len(y)), y + rng.normal(0, 1.5, len(y))])[:, :, None]
    auc = registry.metric_named("roc_auc", "binary")
    weights = blend.greedy_weights(views, y, auc)
    assert weights.sum() == pytest.approx(1.0) and (weights > 0.2).all()
    blended = auc(y, np.tensordot(weights, views, axes=1)[:, 0])
    assert blended > max(auc(y, view[:, 0]) for view in views)


class _Trained:
    def __init__(self, model: str, split: str) -> None:
        self.model, self.split = model, split

    def manifest(self) -> dict:
        return {"upstream": {"Split__99914b932b": self.split, "Ingest__99914b932b": "x"}}


def test_blend_refuses_models_trained_on_different_splits():
    with pytest.raises(errors.PipelineError, match="different Split results"):
        blend.check_same_split([_Trained("hgb", "aaaa1111"), _Trained("linear", "bbbb2222")])
    blend.check_same_split([_Trained("hgb", "aaaa1111"), _Trained("linear", "aaaa1111")])


def feature_folders(pipeline: Pipeline) -> dict[str, list[tuple[Path, int]]]:
    """Each feature task's done folders and when their manifests were written."""
    return {
        task: [(folder, (folder / MANIFEST).stat().st_mtime_ns) for folder in pipeline.done_folders(task)]
        for task in FEATURE_TASKS
    }


def _finished_trials(journal: Path) -> int:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(journal)))
    study = optuna.load_study(study_name="linear", storage=storage)
    return len([t for t in study.get_trials(deepcopy=False) if t.state.is_finished()])


def test_tune_reuses_the_features_and_resumes_after_a_kill(tmp_path: Path, competition: Competition):
    """Tune runs no feature task and rewrites no feature folder; a tune killed mid-study keeps its
    finished trials, and a larger TRIALS adds trials to them."""
    pipeline = Pipeline(tmp_path)
    pipeline.write_raw(*tiny_dataset(competition))
    assert pipeline.run("Features").returncode == 0
    before = feature_folders(pipeline)

    process = pipeline.start("Tune", "--model", "linear", "--trials", "500")
    journals = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        journals = list((pipeline.cache / "Tune").glob("linear-*/journal.log"))
        if journals and _finished_trials(journals[0]) >= 3:
            break
        time.sleep(0.5)
    process.kill()
    process.communicate()
    kept = _finished_trials(journals[0])
    assert 3 <= kept < 500

    result = pipeline.run("Tune", "--model", "linear", "--trials", str(kept + 2))
    assert result.returncode == 0, describe(result)
    assert not set(tasks_run(result)) & set(FEATURE_TASKS)
    assert _finished_trials(journals[0]) == kept + 2
    assert feature_folders(pipeline) == before
    best = json.loads((tmp_path / "runs" / "tune-linear.json").read_text())
    assert best["finished_trials"] == kept + 2 and "C" in best["best_params"]


def test_a_trial_scores_what_make_train_scores_with_its_parameters(tmp_path: Path, competition: Competition):
    """A tune trial's CV is the one Train reports with the trial's parameters, to the last bit: the
    folds fitted side by side in worker processes (two, whatever the cores) are TrainFold's fits,
    seed averaging included."""
    pipeline = Pipeline(tmp_path, train={**SMALL["train"], "seeds": "[1, 2]"})
    pipeline.write_raw(*tiny_dataset(competition))
    pipeline.environment["OMP_NUM_THREADS"] = "2"  # two fold workers even on one core
    result = pipeline.run("Tune", "--model", "hgb", "--trials", "2")
    assert result.returncode == 0, describe(result)
    best = json.loads((tmp_path / "runs" / "tune-hgb.json").read_text())
    result = pipeline.run("Train", "--model", "hgb", "--train-model-params", json.dumps(best["best_params"]))
    assert result.returncode == 0, describe(result)
    facts = manifest(train_folder(pipeline, "hgb"))["facts"]
    assert facts["seeds"] == [1, 2] and facts["cv_score"] == best["best_cv_score"]
