"""Benchmark: what durable writes (fsync of every result file, its folder and the parent after the
rename) cost Ingest on the large synthetic competition of bench/large.py.

Ingest alone (`python -m <package> Ingest --workers 1`, RawData already there) runs --repeat times
with the syncs and --repeat times without (PIPELINE_FSYNC=0, a switch only this benchmark uses),
alternating so that both see the same machine; the cache is emptied before each run. Prints the
median of each and their ratio (goal: at most 1.05).

Usage: python bench/durable.py [--rows N] [--test-rows N] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from large import MODULE, bake, write_competition


def ingest_seconds(project: Path, sync: bool) -> float:
    subprocess.run(["rm", "-rf", str(project / "data" / "cache")], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "PIPELINE_FSYNC")}
    env.update(PYTHONPATH=str(project / "src"), LUIGI_CONFIG_PATH=str(project / "luigi.cfg"))
    env["PIPELINE_FSYNC"] = "1" if sync else "0"
    command = [sys.executable, "-m", MODULE, "Ingest", "--local-scheduler", "--workers", "1"]
    subprocess.run(["sync"], check=True)  # what earlier runs left in the page cache is not this run's to write
    started = time.perf_counter()
    subprocess.run(command, cwd=project, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="train rows")
    parser.add_argument("--test-rows", type=int, default=1_000_000, help="test rows")
    parser.add_argument("--repeat", type=int, default=3, help="runs with and without the syncs (median)")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-durable-") as work:
        project = bake(Path(work))
        print(f"... writing {options.rows:,} train and {options.test_rows:,} test rows", file=sys.stderr, flush=True)
        write_competition(project / "data" / "raw", options.rows, options.test_rows, options.seed)
        synced, unsynced = [], []
        for i in range(options.repeat):
            print(f"... Ingest, round {i + 1} of {options.repeat}", file=sys.stderr, flush=True)
            synced.append(ingest_seconds(project, sync=True))
            unsynced.append(ingest_seconds(project, sync=False))
    with_sync, without = statistics.median(synced), statistics.median(unsynced)
    ratio = with_sync / without
    day = time.strftime("%Y-%m-%d")
    print(f"{options.rows:,} train rows, {options.test_rows:,} test rows; {os.cpu_count()} cores; {day}")
    print("| figure | measured | baseline | ratio | goal | met |")
    print("|---|---|---|---|---|---|")
    print(
        f"| Ingest with fsync (median of {options.repeat}) | {with_sync:.1f} s | {without:.1f} s (PIPELINE_FSYNC=0) "
        f"| {ratio:.3f}x | at most 1.05x | {'yes' if ratio <= 1.05 else 'NO'} |"
    )
    listed = [", ".join(f"{s:.1f}" for s in runs) for runs in (synced, unsynced)]
    print(f"runs with fsync: {listed[0]} s; without: {listed[1]} s")


if __name__ == "__main__":
    main()
