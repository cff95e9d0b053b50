"""Split: the fold of every train row, from the seed, shared by every feature and the model."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from conftest import Competition, Pipeline, describe, tasks_run, tiny_dataset, wait_for


@dataclass
class SplitRuns:
    first: Pipeline  # seed from luigi.cfg
    twin: Pipeline  # the same seed and data, another cache folder
    first_folder: Path
    first_bytes: bytes  # folds.parquet of the first run, before the run with another seed
    reseeded: subprocess.CompletedProcess  # the first pipeline run again with --competition-seed <other>
    train: pd.DataFrame


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, competition: Competition) -> SplitRuns:
    train, test, sample = tiny_dataset(competition)
    first, twin = Pipeline(tmp_path_factory.mktemp("split-first")), Pipeline(tmp_path_factory.mktemp("split-twin"))
    for pipeline in (first, twin):
        pipeline.write_raw(train, test, sample)
    for result in [wait_for(p) for p in (first.start("Split"), twin.start("Split"))]:
        assert result.returncode == 0, describe(result)
    [folder] = first.done_folders("Split")
    first_bytes = (folder / "folds.parquet").read_bytes()
    other_seed = (competition.seed + 1) % 2**32  # seeds go up to 2**32 - 1
    reseeded = first.run("Split", "--competition-seed", str(other_seed))
    assert reseeded.returncode == 0, describe(reseeded)
    return SplitRuns(first, twin, folder, first_bytes, reseeded, train)


def folds_of(folder: Path) -> pd.DataFrame:
    return pd.read_parquet(folder / "folds.parquet")


def test_same_seed_gives_byte_identical_folds(runs: SplitRuns):
    """Two runs with the same seed and data, in separate caches, write the same Split folder
    name and a byte-identical folds.parquet."""
    [twin_folder] = runs.twin.done_folders("Split")
    assert twin_folder.name == runs.first_folder.name
    assert (twin_folder / "folds.parquet").read_bytes() == runs.first_bytes


def test_another_seed_gives_other_folds_in_another_folder(runs: SplitRuns, competition: Competition):
    """Another seed writes a second Split folder with other folds; the first folder stays as
    it was, and Ingest (which does not use the seed) does not run again."""
    assert tasks_run(runs.reseeded) == ["Split"]
    folders = runs.first.done_folders("Split")
    assert len(folders) == 2 and runs.first_folder in folders
    assert (runs.first_folder / "folds.parquet").read_bytes() == runs.first_bytes
    [other] = [f for f in folders if f != runs.first_folder]
    old, new = folds_of(runs.first_folder), folds_of(other)
    assert new[competition.id_column].tolist() == old[competition.id_column].tolist()
    assert (new["fold"] != old["fold"]).any()


@pytest.mark.parametrize("which", ["seed", "other seed"])
def test_every_train_row_gets_exactly_one_fold(runs: SplitRuns, competition: Competition, which: str):
    """folds holds each train row once, in train.csv's order, with a fold in range(n_folds),
    and every fold holds rows."""
    folders = runs.first.done_folders("Split")
    folder = runs.first_folder if which == "seed" else next(f for f in folders if f != runs.first_folder)
    folds = folds_of(folder)
    assert list(folds.columns) == [competition.id_column, "fold"]
    assert folds[competition.id_column].tolist() == runs.train[competition.id_column].tolist()
    assert folds["fold"].notna().all()
    assert set(folds["fold"]) == set(range(competition.n_folds))


def test_fold_sizes_differ_by_at_most_one(runs: SplitRuns, competition: Competition):
    """The folds are as equal in size as the row count allows."""
    sizes = folds_of(runs.first_folder)["fold"].value_counts().reindex(range(competition.n_folds), fill_value=0)
    assert sizes.max() - sizes.min() <= 1


def test_classification_folds_are_stratified(runs: SplitRuns, competition: Competition):
    """Classification: in every fold each class has its share of rows (its count / n_folds)
    to within one row."""
    if not competition.classification:
        pytest.skip("regression folds are not stratified")
    target = runs.train[competition.target_column]
    folds = folds_of(runs.first_folder)["fold"]
    table = pd.crosstab(folds.to_numpy(), target.to_numpy())
    expected = target.value_counts() / competition.n_folds
    for label in expected.index:
        counts = table[label].reindex(range(competition.n_folds), fill_value=0)
        assert ((counts - expected[label]).abs() <= 1).all(), f"class {label!r}: {counts.tolist()} per fold"


@pytest.mark.parametrize("trial", range(12))
def test_folds_are_scikit_learns_row_for_row(trial: int):
    """The memory-lean fold assignment equals scikit-learn's StratifiedKFold and KFold with
    shuffling, for any class balance, number of folds and seed, also when the rows come in
    batches: the split does not depend on which of the two computed it."""
    import numpy as np
    from sklearn.model_selection import KFold, StratifiedKFold

    from {{ cookiecutter.module_name }}.pipeline.data.schemes import shuffled_folds
    from {{ cookiecutter.module_name }}.pipeline.data.split import class_labels, deal, stratified_folds

    rng = np.random.default_rng(trial)
    rows, n_folds, seed = int(rng.integers(40, 3000)), int(rng.integers(2, 11)), int(rng.integers(0, 2**31))
    labels = rng.choice(["x", "y", "z", "w"][: int(rng.integers(2, 5))], rows, p=None)
    codes, _ = pd.factorize(labels)
    counts = np.bincount(codes)
    for splitter, ours in (
        (StratifiedKFold(n_folds, shuffle=True, random_state=seed), stratified_folds(codes, counts, n_folds, seed)),
        (KFold(n_folds, shuffle=True, random_state=seed), shuffled_folds(rows, n_folds, seed)),
    ):
        expected = np.zeros(rows, dtype=int)
        for number, (_, held_out) in enumerate(splitter.split(np.zeros(rows), labels)):
            expected[held_out] = number
        assert ours.tolist() == expected.tolist()
    # dealt in batches, as Split writes them, the folds are the same
    labels, dealt = class_labels(counts, n_folds, seed), np.zeros(len(counts), dtype=np.int64)
    cuts = sorted(rng.integers(0, rows, 3))
    in_batches = np.concatenate([deal(part, labels, dealt) for part in np.split(codes, cuts)])
    assert in_batches.tolist() == stratified_folds(codes, counts, n_folds, seed).tolist()
