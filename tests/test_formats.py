"""An Outbrain-shaped competition through `make all`: MAP@12 over each display's ads and a ranked file.

bench/outbrain.py bakes the default project, writes a tiny competition of its own making (clicks_train
and clicks_test keyed by display_id and ad_id, events, promoted_content, documents_categories and a
sample that lists each display's ads), puts its two features in FEATURES and its lines in luigi.cfg
(the tables, the key, map@12, group_column, format = ranked), runs `make all` and prints its figures.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
from conftest import TEMPLATE


def test_an_outbrain_competition_makes_a_valid_ranked_file(tmp_path: Path):
    """The file lists, for each display of the sample in its order, every one of its test ads once,
    space-separated; the CV score is MAP@12, and the benchmark prints its four figures."""
    command = [sys.executable, str(TEMPLATE / "bench" / "outbrain.py"), "--displays", "400", "--folds", "2"]
    command += ["--work", str(tmp_path)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    for row in ("pipeline: click rates", "baseline: each display's ads"):
        assert re.search(rf"^\| {row}[^|]* \| 0\.\d{{5}} \| 0\.\d{{5}} \|$", run.stdout, re.MULTILINE), run.stdout
    [line] = [line for line in run.stdout.splitlines() if line.startswith("Submission: ")]
    submission = Path(line.removeprefix("Submission: "))
    assert "-map@12-" in submission.name
    raw = tmp_path / "kaggle-competition" / "data" / "raw"
    made, sample = pd.read_csv(submission, dtype=str), pd.read_csv(raw / "sample_submission.csv", dtype=str)
    assert list(made.columns) == ["display_id", "ad_id"]
    assert made["display_id"].tolist() == sample["display_id"].tolist()
    test = pd.read_csv(raw / "clicks_test.csv", dtype=str).groupby("display_id")["ad_id"].agg(sorted)
    pairs = zip(made["display_id"], made["ad_id"], strict=True)
    assert all(sorted(ads.split()) == test[display] for display, ads in pairs)
    assert made["ad_id"].tolist() != sample["ad_id"].tolist()  # ranked by score, not the sample's order
