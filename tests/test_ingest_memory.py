"""Ingest's memory is set by its chunk size, not by the size of the CSV it reads.

Here rather than in the generated project's suite: the file must be large enough that holding
it whole could not pass, which takes a few seconds, and the project's suite runs three times.
"""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv
import pytest

CHUNK_MB = 0.25
CHUNK_IN_MEMORY_MB = 3 * CHUNK_MB  # a chunk read as text: the values plus offsets and validity
# Arrow's reader reads a few dozen chunks ahead, and the allocators keep some memory they freed:
# together 5-25 MB more on the larger file, measured on 2 cores.
ALLOCATOR_SLACK_MB = 40


def write_competition(raw: Path, rows: int) -> None:
    """train.csv of `rows` rows (8 floats, a category, id and target), a small test and sample."""
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    columns = {"id": np.arange(rows)}
    columns.update({f"x{i}": rng.normal(0, 1, rows).round(6) for i in range(8)})
    columns["city"] = rng.choice(["north", "south", "east", "west"], rows)
    train = pa.table({**columns, "target": rng.integers(0, 2, rows)})
    pv.write_csv(train, raw / "train.csv")
    pv.write_csv(pa.table(columns).slice(0, 1000), raw / "test.csv")
    pv.write_csv(pa.table({"id": np.arange(1000), "target": np.full(1000, 0.5)}), raw / "sample_submission.csv")


def ingest_peak_rss_mb(project: Path, root: Path) -> float:
    """Largest resident memory of `python -m <module> Ingest`, from a fresh wrapper process."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(project / "luigi.cfg")
    config.set("ingest", "chunk_mb", str(CHUNK_MB))
    config.set("paths", "raw", str(root / "raw"))
    config.set("paths", "cache", str(root / "cache"))
    with open(root / "luigi.cfg", "w") as f:
        config.write(f)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MAKEFLAGS")}
    env.update(LUIGI_CONFIG_PATH=str(root / "luigi.cfg"), PYTHONPATH=str(project / "src"))
    measure = (
        "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "print(r.stdout, r.stderr, file=sys.stderr); sys.exit(r.returncode) if r.returncode else None; "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    args = [sys.executable, "-c", measure, sys.executable, "-m", "kaggle_competition", "Ingest", "--local-scheduler"]
    result = subprocess.run(args, cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip()) / 1024


@pytest.fixture(scope="module")
def project(bake, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bake(tmp_path_factory.mktemp("memory"))


def test_ingest_memory_does_not_grow_with_the_csv(project: Path, tmp_path: Path):
    """A CSV of about 350 chunks peaks within three chunks' worth of memory (plus the reader's
    read-ahead and what the allocators keep) of a CSV of about 40 chunks; holding the larger
    file whole, even as typed numbers, would take far more than that margin."""
    peaks, sizes = {}, {}
    for rows in (125_000, 1_000_000):
        root = tmp_path / str(rows)
        write_competition(root / "raw", rows)
        sizes[rows] = (root / "raw" / "train.csv").stat().st_size / 2**20
        peaks[rows] = ingest_peak_rss_mb(project, root)
    margin = 3 * CHUNK_IN_MEMORY_MB + ALLOCATOR_SLACK_MB
    typed_size_mb = 1_000_000 * 11 * 8 / 2**20
    assert typed_size_mb > 1.5 * margin and sizes[1_000_000] > 300 * CHUNK_MB, sizes
    assert peaks[1_000_000] <= peaks[125_000] + margin, (peaks, sizes)
