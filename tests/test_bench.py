"""The benchmark script runs and prints every figure (a smoke test: timings are not asserted)."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import TEMPLATE

FIGURES = [
    "Ingest + Split of train, wall time",
    "Ingest + Split, peak memory",
    "Ingest + Split, peak memory, train.csv 4x larger",
    "make features, 4 CPU-bound features, WORKERS=2",
    "make train, 20,000 rows, folds 2 at a time (WORKERS=2)",
    "make train (WORKERS=2) against a plain scikit-learn loop over the folds",
    "up-to-date make all",
    "feature reading 2 of 20 columns",
]


def test_large_benchmark_prints_every_figure_with_its_baseline_and_goal():
    """bench/large.py on 100k rows bakes, runs the pipeline and the pandas baseline, and prints
    one table row per figure: measured value, baseline, ratio, goal and whether it was met."""
    args = [str(TEMPLATE / "bench" / "large.py"), "--rows", "100000", "--test-rows", "20000", "--repeat", "1"]
    args += ["--train-rows", "20000"]
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    header = r"100,000 train rows \(\d+ MB CSV\), 20,000 test rows; \d+ cores; load average"
    assert re.search(header, result.stdout), result.stdout
    for figure in FIGURES:
        measured, baseline, ratio = r"[\d.]+ (s|MB)[^|]*", r"[^|]+", r"\d+\.\d\dx"
        goal = r"(at (least|most) [\d.]+x|faster)[^|]*"
        pattern = rf"^\| {re.escape(figure)}[^|]* \| {measured} \| {baseline} \| {ratio} \| {goal} \| (yes|NO) \|$"
        assert re.search(pattern, result.stdout, re.MULTILINE), f"{figure}\n{result.stdout}"
