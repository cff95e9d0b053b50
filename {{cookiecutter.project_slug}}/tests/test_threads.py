"""Parallel workers share the cores: each gets cpu_count // WORKERS threads for OpenMP, BLAS
and Arrow, unless the user chose a number."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import SRC

from {{ cookiecutter.module_name }}.__main__ import THREAD_VARIABLES, _workers, limit_threads


@pytest.fixture
def clean_thread_env(monkeypatch: pytest.MonkeyPatch):
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


@pytest.mark.parametrize("workers", [1, 2, 3, 64])
def test_each_worker_gets_its_share_of_the_cores(workers: int, clean_thread_env):
    """cores // workers threads per worker (at least one), in every thread-pool variable."""
    threads = limit_threads(workers)
    assert threads == max(1, cores() // workers)
    assert {os.environ[name] for name in THREAD_VARIABLES} == {str(threads)}


def test_a_number_the_user_exported_wins(monkeypatch: pytest.MonkeyPatch, clean_thread_env):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    limit_threads(64)
    assert os.environ["OMP_NUM_THREADS"] == "7"
    assert os.environ["OPENBLAS_NUM_THREADS"] == str(max(1, cores() // 64))


@pytest.mark.parametrize(
    ("argv", "workers"),
    [(["Split", "--workers", "4"], 4), (["Split", "--workers=3"], 3), (["Split", "--workers", "x"], 1)],
)
def test_workers_are_read_from_the_command_line(argv: list[str], workers: int):
    assert _workers(argv) == workers


def test_arrow_in_a_worker_uses_its_share():
    """A process started with the variables set (as Luigi's forked workers are) sizes Arrow's
    CPU pool from them."""
    code = (
        f"import sys; sys.path.insert(0, {str(SRC)!r}); "
        "from {{ cookiecutter.module_name }}.__main__ import limit_threads; limit_threads(64); "
        "import pyarrow; print(pyarrow.cpu_count())"
    )
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.strip() == "1"
