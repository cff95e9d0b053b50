"""Threads per running task: the cores are shared among the task processes running now, so a task
that runs alone uses every core and tasks that run side by side never oversubscribe them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import MANIFEST, Competition, Pipeline, describe, tiny_dataset

from {{ cookiecutter.module_name }}.pipeline.resources import threads


@pytest.fixture
def registry(tmp_path: Path, luigi_config, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty registry of running tasks, on a machine of 8 cores, with no thread count exported."""
    luigi_config("paths", "cache", str(tmp_path))
    monkeypatch.setattr(threads, "cores", lambda: 8)
    monkeypatch.setattr(threads, "_user_threads", None)
    return tmp_path / ".running"


@pytest.fixture
def others() -> Iterator[list[subprocess.Popen]]:
    """Other live processes, to register as running tasks."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        process.kill()
        process.wait()


def register(registry: Path, others: list[subprocess.Popen], count: int) -> None:
    registry.mkdir(parents=True, exist_ok=True)
    for _ in range(count):
        others.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]))
        (registry / str(others[-1].pid)).touch()


@pytest.mark.parametrize(("running_beside", "expected"), [(0, 8), (1, 4), (2, 2), (3, 2), (9, 1)])
def test_a_task_gets_its_share_of_the_cores_among_the_running_tasks(
    registry: Path, others: list, running_beside: int, expected: int
):
    register(registry, others, running_beside)
    with threads.running():
        assert threads.share() == expected


def test_tasks_that_died_are_not_counted_and_their_entries_go(registry: Path, others: list):
    register(registry, others, 1)
    others[0].kill()
    others[0].wait()
    (registry / "999999999").touch()  # a pid no process has
    with threads.running():
        assert threads.share() == 8
    assert list(registry.iterdir()) == []


def test_a_thread_count_the_user_exported_wins(registry: Path, others: list, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(threads, "_user_threads", "3")
    register(registry, others, 3)
    assert threads.share() == 3


def test_limits_apply_to_openmp_blas_and_arrow_inside_the_block_only(monkeypatch: pytest.MonkeyPatch):
    """Pools already loaded are limited (threadpoolctl), and libraries loaded inside the block find
    the limit in their variables; both are as before once the block ends."""
    import pyarrow
    from sklearn.ensemble import HistGradientBoostingRegressor  # noqa: F401 - loads scikit-learn's OpenMP
    from threadpoolctl import threadpool_info

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    arrow_before, pools_before = pyarrow.cpu_count(), threadpool_info()
    with threads.limited(1) as count:
        assert count == 1 == threads.openmp_threads()
        assert pyarrow.cpu_count() == 1
        assert {pool["num_threads"] for pool in threadpool_info()} == {1}
        assert {os.environ[name] for name in threads.VARIABLES} == {"1"}
    assert pyarrow.cpu_count() == arrow_before
    assert threadpool_info() == pools_before
    assert "OMP_NUM_THREADS" not in os.environ


def fold_facts(pipeline: Pipeline) -> list[dict]:
    return [json.loads((folder / MANIFEST).read_text())["facts"] for folder in pipeline.done_folders("TrainFold")]


def test_folds_fitted_alone_use_every_core_and_side_by_side_share_them(
    tmp_path: Path, competition: Competition, monkeypatch: pytest.MonkeyPatch
):
    """WORKERS=1: each fold's model is fit with all the cores, one fold after the other. WORKERS=2
    with two folds: both fit at once, each with half of them. (Every fit counts as large here: small
    ones get one thread.)"""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # the runs' environment: no number chosen
    data = tiny_dataset(competition)
    large = {"small_fit_cells": "0"}
    for workers, share in (("1", threads.cores()), ("2", max(1, threads.cores() // 2))):
        pipeline = Pipeline(tmp_path / workers, competition={"n_folds": "2"}, train=large)
        pipeline.write_raw(*data)
        result = pipeline.run("Train", "--workers", workers)
        assert result.returncode == 0, describe(result)
        assert [facts["fit_threads"] for facts in fold_facts(pipeline)] == [share, share]
        events = [line.split()[0] for line in result.stdout.splitlines() if " TrainFold " in line]
        assert events == (["run", "done"] * 2 if workers == "1" else ["run", "run", "done", "done"]), result.stdout


@pytest.mark.parametrize(
    ("rows", "columns", "share", "expected"), [(900, 10, 2, 1), (99_999, 10, 4, 1), (100_000, 10, 2, 2), (10, 10, 1, 1)]
)
def test_a_small_fit_gets_one_thread(registry: Path, rows: int, columns: int, share: int, expected: int):
    """Below a million cells a fit uses one thread whatever its share; at or above, its share."""
    assert threads.for_fit(rows, columns, share, 1_000_000) == expected


def test_small_folds_fit_with_one_thread_even_alone(
    tmp_path: Path, competition: Competition, monkeypatch: pytest.MonkeyPatch
):
    """A fold of a tiny competition fitted alone (WORKERS=1) uses one OpenMP thread, not every core:
    its threads would wait on each other more than they work, worst on a busy machine."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    pipeline = Pipeline(tmp_path, competition={"n_folds": "2"})
    pipeline.write_raw(*tiny_dataset(competition))
    result = pipeline.run("Train", "--workers", "1")
    assert result.returncode == 0, describe(result)
    assert [facts["fit_threads"] for facts in fold_facts(pipeline)] == [1, 1]
