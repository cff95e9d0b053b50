"""Benchmark: workers of Luigi's central scheduler (make scheduler, make worker) on the large
synthetic competition of bench/large.py, with the four CPU-bound features of its features row.

- `make features` through one luigid: two worker processes (WORKERS=1 each, started together)
  against one, alternating --repeat times (the features' folders are removed before each run);
  prints the medians and their ratio (goal: at least 1.6x on 2 cores);
- a worker killed (SIGKILL) in the middle of a feature: seconds until the other worker starts
  that feature again, with the project's shipped [scheduler] settings (goal: within a minute).

The cache is the project's local folder (several workers on one machine): a cache on S3 for
several machines is not built yet.

Usage: python bench/scheduler.py [--rows N] [--repeat N]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from large import bake, make, use_cpu_features, write_competition


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "LUIGI_CONFIG_PATH", "PYTHONPATH")}


def workers(project: Path, port: int, count: int) -> list[subprocess.Popen]:
    command = make(project, "features", "WORKERS=1", f"SCHEDULER_HOST=localhost:{port}")
    return [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env=environment(), start_new_session=True)
        for _ in range(count)
    ]  # fmt: skip


@contextlib.contextmanager
def scheduler(project: Path) -> Iterator[int]:
    """A fresh luigid for each run: one that saw a task done in the last 10 s keeps it done
    ([scheduler] stable_done_cooldown_secs), though its folder was removed for the next run."""
    port = free_port()
    subprocess.run(make(project, "scheduler", f"SCHEDULER_PORT={port}"), check=True, capture_output=True)
    try:
        yield port
    finally:
        subprocess.run(make(project, "scheduler-stop", f"SCHEDULER_PORT={port}"), check=True, capture_output=True)


def features_seconds(project: Path, port: int, count: int) -> float:
    for folder in (project / "data" / "cache").glob("Rank*"):
        subprocess.run(["rm", "-rf", str(folder)], check=True)
    started = time.perf_counter()
    for worker in workers(project, port, count):
        output, _ = worker.communicate()
        if worker.returncode:
            log = (project / ".luigid" / f"luigid-{port}.log").read_text()[-3000:]
            raise SystemExit(f"a worker failed:\n{output}\nluigid's log:\n{log}")
    return time.perf_counter() - started


def pickup_seconds(project: Path, port: int) -> float:
    """Kill the first worker that starts a feature; seconds until the other starts it again."""
    for folder in (project / "data" / "cache").glob("Rank*"):
        subprocess.run(["rm", "-rf", str(folder)], check=True)
    first, second = workers(project, port, 2)
    for line in first.stdout:
        if line.startswith("run   Rank"):
            feature = line.split()[1]
            os.killpg(first.pid, signal.SIGKILL)
            killed = time.perf_counter()
            break
    first.wait()
    for line in second.stdout:
        if line.startswith(f"run   {feature}"):
            seconds = time.perf_counter() - killed
            break
    second.communicate()
    if second.returncode:
        raise SystemExit("the second worker failed")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="train rows")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each worker count (median)")
    options = parser.parse_args()
    load_before = " ".join(f"{value:.1f}" for value in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="bench-") as work:
        project = bake(Path(work))
        write_competition(project / "data" / "raw", options.rows, options.rows // 5, seed=0)
        use_cpu_features(project)
        subprocess.run(make(project, "split"), check=True, capture_output=True)
        runs: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(options.repeat):
            for count in (1, 2):
                with scheduler(project) as port:
                    runs[count].append(features_seconds(project, port, count))
        with scheduler(project) as port:
            pickup = pickup_seconds(project, port)
    one, two = statistics.median(runs[1]), statistics.median(runs[2])
    print(f"{options.rows:,} train rows, {os.cpu_count()} cores, load average before: {load_before}\n")
    print("| figure | measured | baseline | ratio | goal | met |")
    print("|---|---|---|---|---|---|")
    print(
        f"| make features through luigid, 4 CPU-bound features, 2 workers | {two:.1f} s | {one:.1f} s (1 worker) "
        f"| {one / two:.2f}x | at least 1.6x faster | {'yes' if one / two >= 1.6 else 'NO'} |"
    )
    print(f"| a killed worker's feature started again by the other | {pickup:.1f} s | | | within 60 s "
          f"| {'yes' if pickup <= 60 else 'NO'} |")  # fmt: skip
    shown = {count: ", ".join(f"{s:.1f}" for s in seconds) for count, seconds in runs.items()}
    print(f"\nruns (s): 1 worker {shown[1]}; 2 workers {shown[2]}")


if __name__ == "__main__":
    main()
