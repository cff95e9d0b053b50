"""Benchmark: small fits on a busy machine, with every fit at its thread share (the baseline,
`[train] small_fit_cells = 0`) against small fits at one thread (the default), in one run.

Bakes two projects: one with a Titanic-shaped competition (ROWS rows: numbers with missing values,
strings of few and of many values, PassengerId and Survived) and the default demo. Times, on a
quiet machine and then beside BURNERS CPU-burning neighbours (`python -c 'while True: pass'`):
- `make tune MODEL=hgb TRIALS=3` on the Titanic-shaped project (its study removed before each run);
- `make train` on both projects (Train and TrainFold results removed before each run);
each with the baseline and with the default, alternating, features cached beforehand. Prints the
medians, the ratio baseline / default per row, and the load average before and after.
Usage: python bench/busy.py [--rows 900] [--repeat 1] [--burners 2]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]
SETTINGS = {"every fit at its share": "--train-small-fit-cells 0", "small fits at one thread": ""}


def write_titanic_like(raw: Path, rows: int) -> None:
    """A competition shaped like Titanic's: ids, a binary target, numbers with gaps, a few strings."""
    rng = np.random.default_rng(0)
    total = rows + rows // 2
    pclass = rng.integers(1, 4, total)
    sex = rng.choice(["male", "female"], total)
    age = np.where(rng.random(total) < 0.2, np.nan, rng.normal(30, 14, total).clip(1, 80).round())
    fare = (rng.lognormal(3, 1, total) / pclass).round(2)
    odds = 1.2 * (sex == "female") - 0.6 * (pclass - 2) - 0.01 * np.nan_to_num(age, nan=30) + rng.normal(0, 1, total)
    frame = pd.DataFrame(
        {
            "PassengerId": np.arange(1, total + 1),
            "Pclass": pclass,
            "Name": [f"Passenger {i}, Mr. X" for i in range(total)],
            "Sex": sex,
            "Age": age,
            "SibSp": rng.integers(0, 4, total),
            "Parch": rng.integers(0, 3, total),
            "Ticket": [f"T{value}" for value in rng.integers(0, rows // 2, total)],
            "Fare": fare,
            "Embarked": rng.choice(["S", "C", "Q"], total, p=[0.7, 0.2, 0.1]),
        }
    )
    raw.mkdir(parents=True, exist_ok=True)
    frame.iloc[:rows].assign(Survived=(odds[:rows] > 0).astype(int)).to_csv(raw / "train.csv", index=False)
    frame.iloc[rows:].to_csv(raw / "test.csv", index=False)
    frame.iloc[rows:][["PassengerId"]].assign(Survived=0).to_csv(raw / "sample_submission.csv", index=False)


def make(project: Path, *args: str) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("LUIGI_CONFIG_PATH", "PYTHONPATH", "MAKEFLAGS")}
    command = ["make", "--no-print-directory", "-C", str(project), *args, f"VENV={sys.prefix}"]
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"ERROR: {' '.join(args)} failed in {project}:\n{result.stdout}\n{result.stderr}")
    return elapsed


def forget(project: Path, *names: str) -> None:
    """Remove the cached results of these tasks and Tune's result, so that the next run recomputes them."""
    for name in names:
        shutil.rmtree(project / "data" / "cache" / name, ignore_errors=True)
    (project / "runs" / "tune-hgb.json").unlink(missing_ok=True)


@contextlib.contextmanager
def neighbours(count: int) -> Iterator[None]:
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        time.sleep(1)
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=900)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--burners", type=int, default=2)
    options = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-busy-") as tmp:
        titanic = Path(
            cookiecutter(
                str(TEMPLATE),
                no_input=True,
                output_dir=str(Path(tmp) / "titanic"),
                extra_context={"id_column": "PassengerId", "target_column": "Survived"},
            )
        )
        write_titanic_like(titanic / "data" / "raw", options.rows)
        demo = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(Path(tmp) / "demo")))
        make(demo, "data")
        for project in (titanic, demo):
            make(project, "features")
        jobs = {
            f"make tune MODEL=hgb TRIALS=3 ({options.rows} rows)": (titanic, ["tune", "MODEL=hgb", "TRIALS=3"], "Tune"),
            f"make train ({options.rows} rows)": (titanic, ["train"], "Train"),
            "make train (the demo)": (demo, ["train"], "Train"),
        }
        times: dict[tuple[str, str, str], list[float]] = {}
        for condition, burners in (("quiet", 0), (f"{options.burners} busy neighbours", options.burners)):
            with neighbours(burners):
                for _ in range(options.repeat):
                    for job, (project, args, task) in jobs.items():
                        for setting, luigi_args in SETTINGS.items():
                            forget(project, task, "TrainFold", "Train")
                            seconds = make(project, *args, f"LUIGI_ARGS={luigi_args}")
                            times.setdefault((condition, job, setting), []).append(seconds)
    load_after = os.getloadavg()
    print(f"Small fits, {os.cpu_count()} cores, median of {options.repeat}; baseline: {next(iter(SETTINGS))}")
    print(f"| condition | run | {' | '.join(SETTINGS)} | ratio |")
    print("|---|---|---|---|---|")
    for condition, job in dict.fromkeys((c, j) for c, j, _ in times):
        base, new = (statistics.median(times[(condition, job, setting)]) for setting in SETTINGS)
        print(f"| {condition} | {job} | {base:.1f} s | {new:.1f} s | {base / new:.2f}x |")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")


if __name__ == "__main__":
    main()
