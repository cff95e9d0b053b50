"""A project baked with a Kaggle competition, through its make targets against a fake Kaggle API.

The fake is the baked project's own (tests/kaggle_fake.py): a stdlib HTTP server on 127.0.0.1
in this process, reached by the real `kaggle` client through its LOCALHOST environment and
HTTP_PROXY, with fake credentials and a HOME of its own.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import TEMPLATE, make, tasks_run
from test_s3 import small_competition

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("kaggle") is None, reason="the kaggle client (2.x) needs Python >= 3.11"
)

SLUG = "demo-comp"


def fake_module(project: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("baked_kaggle_fake", project / "tests" / "kaggle_fake.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


@dataclass
class Loop:
    project: Path
    fake: Any
    environment: dict[str, str | None]
    files: dict[str, bytes]


@pytest.fixture(scope="module")
def loop(bake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    """A binary project baked with competition=demo-comp, and the fake serving its archive."""
    root = tmp_path_factory.mktemp("kaggle")
    project = bake(root, competition=SLUG)
    files = {**small_competition(), "visits.parquet": small_visits()}
    with zipfile.ZipFile(root / "archive.zip", "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in files.items():
            bundle.writestr(name, data)
    fakes = fake_module(project)
    (root / "home").mkdir()
    with fakes.running() as fake:
        fake.competition(SLUG, root / "archive.zip")
        yield Loop(project, fake, fake.environment(root / "home"), files)


def small_visits(rows: int = 300, seed: int = 0) -> bytes:
    """An auxiliary table of small_competition's rows, in the shape of the demo's `visits` (which the
    example features read), as a Parquet file's bytes."""
    import io

    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    owner = rng.integers(0, rows, 4 * rows)
    visits = pd.DataFrame(
        {
            "id": owner,
            "visit_date": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, len(owner)), unit="D"),
            "amount": rng.normal(50, 10, len(owner)).round(2),
            "channel": rng.choice(["web", "store"], len(owner)),
        }
    )
    buffer = io.BytesIO()
    visits.to_parquet(buffer, index=False)
    return buffer.getvalue()


def test_download_all_submit_lb_through_make(loop: Loop):
    """The day's loop: `make download` gets every file of the competition (an auxiliary table too),
    `make all` makes a submission from all its tables without a request to Kaggle, `make submit`
    uploads it with the run id and CV in its description and keeps the ref (a second submit is
    refused), and `make lb` writes the public score into the run's record, which `make runs` shows."""
    env = loop.environment
    downloaded = make(loop.project, "download", environment=env)
    assert tasks_run(downloaded) == ["Download"], downloaded.stdout
    raw = loop.project / "data" / "raw"
    assert {name: (raw / name).read_bytes() for name in loop.files} == loop.files
    sent = len(loop.fake.requests)
    assert tasks_run(make(loop.project, "download", environment=env)) == []
    assert len(loop.fake.requests) == sent

    built = make(loop.project, "all", environment=env)
    assert "Download" not in tasks_run(built) and len(loop.fake.requests) == sent
    assert {"Table", "VisitTotals", "LastVisit"} <= set(tasks_run(built)) and "WARNING" not in built.stderr
    [line] = [line for line in built.stdout.splitlines() if line.startswith("Run record: ")]
    record_path = loop.project / line.removeprefix("Run record: ")
    run = json.loads(record_path.read_text())["run_id"]

    submitted = make(loop.project, "submit", environment=env, MESSAGE="first try")
    [created] = [r.body for r in loop.fake.requests if r.name == "CreateSubmission"]
    assert created["submissionDescription"].startswith(f"run {run} | CV roc_auc 0."), created
    assert created["submissionDescription"].endswith("| first try"), created
    ref = json.loads(record_path.read_text())["kaggle"][0]["ref"]
    assert f"(ref {ref})" in submitted.stdout
    again = make(loop.project, "submit", check=False, environment=env)
    assert again.returncode != 0 and f"ERROR: run {run} was already submitted" in again.stderr, again.stderr

    pending = make(loop.project, "lb", environment=env)
    assert f"{run}: pending" in pending.stdout
    loop.fake.score(ref, "0.76543")
    make(loop.project, "lb", environment=env)
    assert json.loads(record_path.read_text())["lb"]["score"] == 0.76543
    rows = make(loop.project, "runs", environment=env).stdout
    assert "0.76543" in rows


def test_kaggle_download_benchmark_prints_both_times_and_the_ratios():
    """bench/kaggle_download.py runs with a tiny archive and prints its figures (not asserted)."""
    result = subprocess.run(
        [sys.executable, str(TEMPLATE / "bench" / "kaggle_download.py"), "1", "1", "50"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    for label in ("make download", "kaggle competitions download"):
        assert re.search(rf"{label}\s+\d+\.\d+ s .*\s+\d+\.\d+ s ", result.stdout), result.stdout
    assert re.search(r"time ratio \(goal: at most 1\.10\)\s+\d+\.\d\dx\s+\d+\.\d\dx", result.stdout), result.stdout
