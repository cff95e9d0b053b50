"""Benchmark: an up-to-date `make all` against `python -c "import luigi"`, measured in one run.

Bakes the default project into a temporary folder, runs its pipeline once, then times both
commands REPEAT times and prints the medians and their ratio (goal: at most 2x).
Usage: python bench/up_to_date.py [REPEAT]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]


def median_seconds(args: list[str], cwd: Path, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(args, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=tmp, default_config=True))
        make_all = ["make", "all", f"VENV={sys.prefix}"]
        subprocess.run(make_all, cwd=project, check=True, capture_output=True)
        pipeline = median_seconds(make_all, project, repeat)
        baseline = median_seconds([sys.executable, "-c", "import luigi"], project, repeat)
    print(f"cores: {os.cpu_count()}, median of {repeat} runs")
    rows = [
        ("up-to-date make all", f"{pipeline:6.3f} s"),
        ('python -c "import luigi"', f"{baseline:6.3f} s"),
        ("ratio (goal: at most 2x)", f"{pipeline / baseline:6.2f}x"),
    ]
    for name, value in rows:
        print(f"{name:<28} {value}")


if __name__ == "__main__":
    main()
