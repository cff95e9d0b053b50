"""Fold schemes for grouped and time-ordered rows ([competition] folds)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import MANIFEST, MODULE, Competition, Pipeline, describe, tiny_dataset


def dataset(competition: Competition):
    """The tiny competition with a group column (about 8 rows a group) and a time column (a number)."""
    train, test, sample = tiny_dataset(competition)
    rng = np.random.default_rng(1)
    for frame in (train, test):
        frame["f_group"] = [f"g{value}" for value in rng.integers(0, len(frame) // 8, len(frame))]
        frame["f_time"] = rng.permutation(len(frame)).astype(float)
    return train, test, sample


def split_of(tmp_path: Path, competition: Competition, task: str = "Split", **scheme: str):
    pipeline = Pipeline(tmp_path, competition=scheme)
    train, test, sample = dataset(competition)
    pipeline.write_raw(train, test, sample)
    result = pipeline.run(task)
    assert result.returncode == 0, describe(result)
    (folder,) = pipeline.done_folders("Split")
    folds = pd.read_parquet(folder / "folds.parquet")
    return pipeline, train.merge(folds, on=competition.id_column, validate="one_to_one")


def test_group_folds_keep_each_group_in_one_fold(tmp_path: Path, competition: Competition):
    _, rows = split_of(tmp_path, competition, folds="group", group_column="f_group")
    assert (rows.groupby("f_group")["fold"].nunique() == 1).all()
    assert sorted(rows["fold"].unique()) == list(range(5))


def test_stratified_group_folds_keep_groups_and_classes(tmp_path: Path, competition: Competition):
    if not competition.classification:
        pytest.skip("stratified folds need classes: the regression case is the bad-config test")
    _, rows = split_of(tmp_path, competition, folds="stratified_group", group_column="f_group")
    assert (rows.groupby("f_group")["fold"].nunique() == 1).all()
    shares = pd.crosstab(rows["fold"], rows[competition.target_column], normalize="index")
    assert (shares.max() - shares.min()).max() < 0.2


def test_time_folds_validate_later_than_every_fitted_row_with_the_gap(tmp_path: Path, competition: Competition):
    """Each fold's validation rows are later than all its fitting rows by more than time_gap; the
    first block is never validated and is left out of the CV score."""
    pipeline, rows = split_of(tmp_path, competition, "Train", folds="time", time_column="f_time", time_gap="10")
    assert (rows["fold"] == -1).sum() > 0
    for k in range(5):
        validated = rows.loc[rows["fold"] == k, "f_time"]
        fitted = rows.loc[rows["fits"] <= k, "f_time"]
        assert len(validated) and len(fitted)
        assert validated.min() - fitted.max() > 10
        assert not set(validated.index) & set(fitted.index)
    (train,) = pipeline.done_folders("Train")
    oof = pd.read_parquet(train / "oof.parquet")
    prediction = oof.columns[-1]
    assert oof.loc[oof["fold"] == -1, prediction].isna().all()
    assert oof.loc[oof["fold"] >= 0, prediction].notna().all()
    assert np.isfinite(json.loads((train / MANIFEST).read_text())["facts"]["cv_score"])


def test_a_stratified_scheme_for_regression_is_one_error_line(tmp_path: Path, competition: Competition):
    if competition.classification:
        pytest.skip("a regression-only error")
    pipeline = Pipeline(tmp_path, competition={"folds": "stratified_group", "group_column": "f_group"})
    pipeline.write_raw(*dataset(competition))
    result = pipeline.run("Split")
    assert result.returncode != 0 and "ERROR: luigi.cfg [competition] folds = stratified_group" in result.stderr


@pytest.mark.parametrize(
    ("scheme", "message"),
    [
        ({"folds": "group", "group_column": "nope"}, "group_column = 'nope': data/raw/train.csv has no such column"),
        ({"folds": "group"}, "group_column is empty"),
        ({"folds": "time", "time_column": "f_color"}, "time_column = 'f_color'"),
        ({"folds": "weekly"}, "folds = 'weekly': use one of"),
    ],
    ids=["missing-group-column", "no-group-column", "time-column-not-a-number", "unknown-scheme"],
)
def test_bad_fold_config_is_one_error_line(tmp_path: Path, competition: Competition, scheme: dict, message: str):
    pipeline = Pipeline(tmp_path, competition=scheme)
    pipeline.write_raw(*dataset(competition))
    result = pipeline.run("Split")
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert result.returncode != 0 and len(errors) == 1, describe(result)
    assert message.replace("data/raw/train.csv", "") in errors[0].replace(str(pipeline.raw / "train.csv"), ""), errors
    assert "Traceback" not in result.stderr


def test_the_folds_of_a_train_read_split_and_the_target_once(monkeypatch: pytest.MonkeyPatch):
    """While Train fits its folds, Split's folds and each target column are read once for them all;
    outside that block every call reads them (a later run may have other results)."""
    train = importlib.import_module(f"{MODULE}.pipeline.training.train")
    reads: list[str] = []
    monkeypatch.setattr(train, "_split_folds", lambda: reads.append("folds") or pd.DataFrame({"fold": [0, 1, 0, 1]}))
    monkeypatch.setattr(train.TrainFold, "_target", lambda self, column: reads.append(column) or (np.zeros(4), []))
    fold = train.TrainFold(model="hgb", fold=0)
    with train._read_once_for_every_fold():
        masks = [train.fold_rows(k) for k in (0, 1, 0)]
        fold.target("y"), fold.target("y"), fold.target("z")
    assert reads == ["folds", "y", "z"]
    assert masks[0][0].tolist() == [True, False, True, False] and masks[1][1].tolist() == [True, False, True, False]
    train.fold_rows(0), fold.target("y")
    assert reads == ["folds", "y", "z", "folds", "y"]
