"""Any metric and any submission file, through the pipeline: an Outbrain-shaped competition scored by
MAP@12 with a ranked file, a metric and a format of the user's own, and several targets at once. Each is
a tiny competition of its own (the template's suite runs this file in one bake, for time)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import MANIFEST, MODULE, Pipeline, describe, tasks_run
from test_kaggle import runs_command
from test_tables import OUTBRAIN_FEATURES, Outbrain, errors, facts, result, with_features

QUICK = {"train": {"model_params": json.dumps({"max_iter": 30}), "importance_repeats": "0"}}
BINARY = {"problem_type": "binary", "n_folds": "3"}
OUTBRAIN = {
    **BINARY,
    "train": "clicks_train",
    "test": "clicks_test",
    "id_column": "display_id ad_id",
    "target_column": "clicked",
    "metric": "map@12",
    "group_column": "display_id",
}


def clicks(seed: int = 7, displays: int = 120) -> dict[str, pd.DataFrame]:
    """Displays of 2 to 6 ads, one click each, drawn by an ad's appeal: clicks_train (with `clicked`),
    clicks_test, events (a platform per display), promoted_content (ad -> campaign, advertiser) and a
    sample that lists each test display's ads, space-separated. test_tables.py's OUTBRAIN_FEATURES
    read them."""
    rng = np.random.default_rng(seed)
    appeal = rng.normal(0, 1.5, 40)
    shown = [(d, ad) for d in range(1, displays + 1) for ad in rng.choice(40, rng.integers(2, 7), replace=False)]
    rows = pd.DataFrame(shown, columns=["display_id", "ad_id"])
    weight = np.exp(appeal[rows["ad_id"]] + rng.gumbel(size=len(rows)))
    rows["clicked"] = (weight == rows.assign(w=weight).groupby("display_id")["w"].transform("max")).astype(int)
    rows["ad_id"] += 100
    rows["position"] = rows.groupby("display_id").cumcount()
    test = rows["display_id"] > displays * 3 // 4
    lists = rows[test].groupby("display_id")["ad_id"].agg(lambda ads: " ".join(map(str, ads)))
    return {
        "clicks_train": rows[~test].reset_index(drop=True),
        "clicks_test": rows[test].drop(columns="clicked").reset_index(drop=True),
        "events": pd.DataFrame({"display_id": range(1, displays + 1), "platform": rng.integers(1, 4, displays)}),
        "promoted_content": pd.DataFrame(
            {"ad_id": range(100, 140), "campaign_id": np.arange(40) // 4, "advertiser": np.arange(40) // 8 + 1}
        ),
        "sample_submission": lists.sample(frac=1.0, random_state=seed).reset_index(),
    }


def written(pipeline: Pipeline, tables: dict[str, pd.DataFrame]) -> Pipeline:
    for name, table in tables.items():
        table.to_csv(pipeline.raw / f"{name}.csv", index=False)
    return pipeline


def map_at(k: int, oof: pd.DataFrame) -> float:
    """MAP@k as the competition's page states it, one display at a time (the pipeline's is vectorised)."""
    scores = []
    for _, ads in oof.groupby("display_id"):
        ranked = ads.sort_values("prediction", ascending=False, kind="stable")["clicked"].to_numpy()[:k]
        hits = np.flatnonzero(ranked)
        scores.append(sum((n + 1) / (rank + 1) for n, rank in enumerate(hits)) / max(1, min(ads["clicked"].sum(), k)))
    return float(np.mean(scores))


@pytest.fixture(scope="module")
def outbrain(tmp_path_factory: pytest.TempPathFactory) -> Outbrain:
    """MAP@12 over each display's ads, the folds left to their default, a ranked file of at most 3 ads."""
    tables = clicks()
    config = {**QUICK, "competition": OUTBRAIN, "submission": {"format": "ranked", "top_k": "3"}}
    pipeline = written(Pipeline(tmp_path_factory.mktemp("outbrain"), **config), tables)
    with_features(pipeline, OUTBRAIN_FEATURES)
    return Outbrain(pipeline, pipeline.run("Submission"), tables)


def test_grouped_folds_never_split_a_group(outbrain: Outbrain):
    """A metric over groups with folds left empty: every display's ads in one fold, every fold used."""
    assert outbrain.run.returncode == 0, describe(outbrain.run)
    folds = result(outbrain.pipeline, "Split", "folds")
    assert (folds.groupby("display_id")["fold"].nunique() == 1).all()
    assert sorted(folds["fold"].unique()) == [0, 1, 2]


def test_map_at_12_is_the_cv_score(outbrain: Outbrain):
    """Train's CV and fold scores are MAP@12 of the out-of-fold predictions, display by display."""
    train = facts(outbrain.pipeline, "Train")
    oof = result(outbrain.pipeline, "Train", "oof")
    assert (train["metric"], train["greater_is_better"]) == ("map@12", True)
    assert train["cv_score"] == pytest.approx(map_at(12, oof))
    for k, score in enumerate(train["fold_scores"]):
        assert score == pytest.approx(map_at(12, oof[oof["fold"] == k]))
    assert 0.2 < train["cv_score"] < 1.0


def test_a_ranked_file_lists_each_displays_ads_by_score(outbrain: Outbrain):
    """The file has the sample's columns and displays in its order; each display's ads are the test
    rows', best predicted first, at most top_k = 3."""
    [file] = outbrain.pipeline.submissions.glob("*.csv")
    submission, sample = pd.read_csv(file, dtype=str), outbrain.tables["sample_submission"]
    assert list(submission.columns) == ["display_id", "ad_id"]
    assert submission["display_id"].tolist() == sample["display_id"].astype(str).tolist()
    test = result(outbrain.pipeline, "Train", "test")
    for display, ads in zip(submission["display_id"], submission["ad_id"], strict=True):
        rows = test[test["display_id"] == int(display)].sort_values(["prediction", "ad_id"], ascending=[False, True])
        assert ads.split() == rows["ad_id"].astype(str).tolist()[:3]


# --- yours: a metric and a format --------------------------------------------------------------

YOURS = f'''
from {MODULE}.features.numeric import NumericColumns


from {MODULE}.metrics.stub import GINI, joined_key


def backwards(predictions, sample):
    """joined_key's file with its rows in the reverse of the sample's order: the pipeline refuses it."""
    return joined_key(predictions, sample).iloc[::-1]


FEATURES = [NumericColumns]
METRICS = [GINI]
FORMATS = [backwards, joined_key]
'''


@pytest.fixture(scope="module")
def yours(tmp_path_factory: pytest.TempPathFactory) -> tuple[Pipeline, object]:
    """metrics/stub.py's Gini registered as [competition] metric, and a format of the user's whose file
    does not follow the sample (a sample of one id column that joins the two key columns, row_id)."""
    tables = clicks(seed=8)
    test = tables["clicks_test"]
    row_id = test["display_id"].astype(str) + "_" + test["ad_id"].astype(str)
    tables["sample_submission"] = pd.DataFrame({"row_id": row_id, "clicked": 0.5}).iloc[::-1]
    competition = {key: OUTBRAIN[key] for key in ("train", "test", "id_column", "target_column")}
    competition.update(BINARY, metric="gini")
    config = {**QUICK, "competition": competition, "submission": {"format": "backwards"}}
    pipeline = written(Pipeline(tmp_path_factory.mktemp("yours"), **config), tables)
    with_features(pipeline, YOURS)
    return pipeline, pipeline.run("Submission")


def test_a_metric_of_yours_scores_the_models(yours):
    """The registered Gini is the CV score, with its direction, in Train's facts and the fold scores."""
    from sklearn.metrics import roc_auc_score

    pipeline, run = yours
    assert "Train" in tasks_run(run), describe(run)
    train, oof = facts(pipeline, "Train"), result(pipeline, "Train", "oof")
    assert (train["metric"], train["greater_is_better"]) == ("gini", True)
    assert train["cv_score"] == pytest.approx(2 * roc_auc_score(oof["clicked"], oof["prediction"]) - 1)
    folds = [2 * roc_auc_score(part["clicked"], part["prediction"]) - 1 for _, part in oof.groupby("fold")]
    assert train["fold_scores"] == pytest.approx(folds)


def test_a_format_of_yours_that_does_not_follow_the_sample_is_refused_with_one_line(yours):
    """The file is checked against the sample (its first column's keys, in order) whatever made it: the
    backwards one is refused with one line and nothing written; metrics/stub.py's joined_key passes."""
    pipeline, run = yours
    assert run.returncode != 0
    [line] = errors(run)
    assert line.endswith("sample_submission.csv: submission ids or row order differ from the sample"), line
    assert "Traceback" not in run.stderr and not list(pipeline.submissions.glob("*.csv"))
    joined = pipeline.run("Submission", "--submission-format", "joined_key")
    assert tasks_run(joined) == ["Submission"], describe(joined)
    [file] = pipeline.submissions.glob("*.csv")
    submission, test = pd.read_csv(file), result(pipeline, "Train", "test")
    expected = test.set_axis(test["display_id"].astype(str) + "_" + test["ad_id"].astype(str))["prediction"]
    np.testing.assert_allclose(submission["clicked"], expected.loc[submission["row_id"]])


# --- several targets ---------------------------------------------------------------------------


def test_several_targets_get_one_model_each_and_the_mean_cv_score(tmp_path):
    """target_column = clicked liked: a model per target on the same folds (TrainFold per target and
    fold), the CV score the mean of the targets', each target's in the record and `make report`, and
    the submission's columns of the same names filled with each model's predictions."""
    from sklearn.metrics import roc_auc_score

    tables = clicks(seed=9)
    train, test = tables["clicks_train"], tables["clicks_test"]
    train["liked"] = ((train["ad_id"] % 3 == 0) ^ (train["position"] == 0)).astype(int)
    tables["sample_submission"] = test[["display_id", "ad_id"]].assign(liked=0.5, clicked=0.5).iloc[::-1]
    competition = {key: OUTBRAIN[key] for key in ("train", "test", "id_column")}
    config = {**QUICK, "competition": {**BINARY, **competition, "target_column": "clicked liked"}}
    pipeline = written(Pipeline(tmp_path, **config), tables)
    with_features(pipeline, OUTBRAIN_FEATURES)
    run = pipeline.run("Submission")
    assert run.returncode == 0, describe(run)
    assert "Targets: clicked 0." in run.stdout and ", liked 0." in run.stdout
    folds = [json.loads((f / MANIFEST).read_text())["params"] for f in pipeline.done_folders("TrainFold")]
    expected = [(target, str(k)) for target in ("clicked", "liked") for k in range(3)]
    assert sorted((p["target_column"], p["fold"]) for p in folds) == expected

    made = facts(pipeline, "Train")
    oof = result(pipeline, "Train", "oof")
    scores = {target: roc_auc_score(train[target], oof[target]) for target in ("clicked", "liked")}
    assert made["target_scores"] == pytest.approx(scores)
    assert made["cv_score"] == pytest.approx(np.mean(list(scores.values())))
    [record] = [json.loads(p.read_text()) for p in (pipeline.root / "runs").glob("*.json")]
    assert record["cv"]["targets"]["liked"]["score"] == pytest.approx(scores["liked"])
    report = runs_command(pipeline, "report")
    assert report.returncode == 0, describe(report)
    shown = (pipeline.root / "reports" / "report.md").read_text()
    assert f"## Targets (run {record['run_id']}: CV {made['cv_score']:.5f} is their mean)" in shown
    assert f"| liked | {scores['liked']:.5f} |" in shown

    [file] = pipeline.submissions.glob("*.csv")
    submission = pd.read_csv(file).set_index(["display_id", "ad_id"])
    predicted = result(pipeline, "Train", "test").set_index(["display_id", "ad_id"]).loc[submission.index]
    for target in ("clicked", "liked"):
        np.testing.assert_allclose(submission[target].to_numpy(), predicted[target].to_numpy())
