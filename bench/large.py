"""Benchmark: the generated pipeline on a large synthetic competition, against the plain pandas
flow measured in the same run.

Writes a deterministic competition (from --seed: floats, integers with missing values, low- and
high-cardinality strings, a date; 20 columns in train.csv), bakes a project, and prints one row
per figure with its baseline, the ratio and the goal:

- Ingest + Split of train (`make split WORKERS=1`) against pd.read_csv + train_test_split + to_csv
  of both parts: wall time and peak memory;
- the same pipeline on a train.csv --scale times larger: peak memory;
- `make features` with 4 CPU-bound features, WORKERS=2 against WORKERS=1;
- an up-to-date `make all` against `python -c "import luigi"` (a demo project, median of --repeat);
- a feature reading 2 of the 20 columns of Ingest's train table against reading all of them;
- `make train` on a --train-rows competition (its folds fit WORKERS at a time) with WORKERS=2
  against WORKERS=1, and against a plain scikit-learn loop over the same folds and feature
  matrix in one process (predictions checked to be identical): wall time and peak memory.

Peak memory is that of the run's process tree: the largest sum of its processes' resident sets,
sampled every 0.1 s from /proc (Linux), or its largest single process if that is more.

Usage: python bench/large.py [--rows N] [--test-rows N] [--scale K] [--repeat N] [--train-rows N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv
from up_to_date import median_seconds

TEMPLATE = Path(__file__).resolve().parents[1]
MODULE = "kaggle_competition"
BLOCK_ROWS = 500_000

# --- the synthetic competition ----------------------------------------------------------------


def _block(rng: np.random.Generator, first_id: int, rows: int) -> dict[str, pa.Array]:
    """One block of rows: 18 feature columns of the kinds a real competition has, and the id."""
    columns: dict[str, pa.Array] = {"id": pa.array(np.arange(first_id, first_id + rows))}
    for i in range(8):
        columns[f"num_{i}"] = pa.array(rng.normal(0, 1 + i, rows).round(4))
    for i in range(4):
        values = rng.integers(0, 10 ** (i + 2), rows)
        missing = rng.random(rows) < 0.05 if i >= 2 else None  # integers with missing values
        columns[f"int_{i}"] = pa.array(values, mask=missing)
    for i, distinct in enumerate((4, 30, 300)):  # low cardinality
        names = pa.array([f"level_{i}_{j}" for j in range(distinct)])
        columns[f"cat_{i}"] = pc.take(names, pa.array(rng.integers(0, distinct, rows)))
    for i in range(2):  # high cardinality
        codes = pc.cast(pa.array(rng.integers(0, 5 * rows, rows)), pa.string())
        columns[f"code_{i}"] = pc.binary_join_element_wise(f"u{i}", codes, "")
    days = rng.integers(18_000, 20_000, rows).astype("int32")
    columns["date"] = pc.cast(pa.array(days, pa.date32()), pa.string())
    return columns


def write_competition(raw: Path, rows: int, test_rows: int, seed: int) -> None:
    """train.csv (id, 18 features, target), test.csv and sample_submission.csv, block by block."""
    raw.mkdir(parents=True, exist_ok=True)
    for part, count, first_id in (("train", rows, 0), ("test", test_rows, rows)):
        writer = None
        for number, start in enumerate(range(0, count, BLOCK_ROWS)):
            rng = np.random.default_rng([seed, part == "test", number])
            size = min(BLOCK_ROWS, count - start)
            columns = _block(rng, first_id + start, size)
            if part == "train":
                signal = columns["num_0"].to_numpy() + (rng.random(size) < 0.3)
                columns["target"] = pa.array((signal > 0.5).astype("int64"))
            table = pa.table(columns)
            writer = writer or pv.CSVWriter(raw / f"{part}.csv", table.schema)
            writer.write_table(table)
        writer.close()
    ids = pa.array(np.arange(rows, rows + test_rows))
    pv.write_csv(pa.table({"id": ids, "target": pa.array(np.full(test_rows, 0.5))}), raw / "sample_submission.csv")


# --- measuring --------------------------------------------------------------------------------

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def tree_rss_kb(root: int) -> int:
    """Resident memory of root's descendants (root itself excluded), from Linux's /proc, in kB."""
    children, rss = defaultdict(list), {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    fields = f.read().rpartition(")")[2].split()  # the fields after the command's name
            except OSError:  # the process has just ended
                continue
            children[int(fields[1])].append(int(entry.name))
            rss[int(entry.name)] = int(fields[21]) * PAGE_KB
    below, total = list(children[root]), 0
    while below:
        pid = below.pop()
        total += rss[pid]
        below.extend(children[pid])
    return total


_PEAK = (
    "import resource, subprocess, sys, time; t = time.perf_counter(); "
    "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
    "sys.exit(r.stdout + r.stderr) if r.returncode else None; "
    "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def wall_and_peak(args: list[str], cwd: Path, interval: float = 0.1) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of a command's process tree, run by a fresh wrapper: the
    largest sum over the tree's processes, sampled every interval, or the largest single process
    (the wrapper's getrusage) when a short peak fell between two samples."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "LUIGI_CONFIG_PATH", "PYTHONPATH")}
    peak_kb = 0
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        wrapper = subprocess.Popen([sys.executable, "-c", _PEAK, *args], cwd=cwd, env=env, stdout=out, stderr=err)
        while wrapper.poll() is None:
            peak_kb = max(peak_kb, tree_rss_kb(wrapper.pid))
            time.sleep(interval)
        out.seek(0)
        err.seek(0)
        if wrapper.returncode:
            raise SystemExit(f"{' '.join(args)} failed:\n{err.read()}")
        seconds, largest_kb = out.read().split()
    return float(seconds), max(peak_kb, int(largest_kb)) / 1024


BASELINE = """
import sys
import pandas as pd
from sklearn.model_selection import train_test_split

train = pd.read_csv(sys.argv[1])
fit, valid = train_test_split(train, test_size=0.2, random_state=42)
fit.to_csv(sys.argv[2] + "/fit.csv", index=False)
valid.to_csv(sys.argv[2] + "/valid.csv", index=False)
"""

READ_COLUMNS = """
import json, statistics, sys, time
from kaggle_competition.pipeline.tasks import Ingest

def seconds(columns):
    times = []
    for _ in range(int(sys.argv[1])):
        started = time.perf_counter()
        Ingest().load("train", columns=columns)
        times.append(time.perf_counter() - started)
    return statistics.median(times)

seconds(None)  # warm the file cache
print(json.dumps({"two": seconds(["num_0", "cat_0"]), "all": seconds(None)}))
"""

CPU_FEATURES = '''"""Four CPU-bound features for the benchmark: ranks of products of numeric columns."""

from __future__ import annotations

from ..pipeline import Feature


class _Ranks(Feature):
    """The rank of x * y over train and test rows: single-threaded sorting, CPU-bound."""

    pair = ("num_0", "num_1")

    def columns(self):
        return list(self.pair)

    def make(self, df):
        import numpy as np
        import pandas as pd

        x, y = (df[c].to_numpy(dtype="float64") for c in self.pair)
        made = {}
        for power in range(1, 4):
            order = np.argsort(x * y**power, kind="stable")
            made[f"{self.task_family}_{power}"] = np.argsort(order, kind="stable").astype("float64")
        return pd.DataFrame(made, index=df.index)


class RankA(_Ranks):
    pair = ("num_0", "num_1")


class RankB(_Ranks):
    pair = ("num_2", "num_3")


class RankC(_Ranks):
    pair = ("num_4", "num_5")


class RankD(_Ranks):
    pair = ("num_6", "num_7")
'''


def use_cpu_features(project: Path) -> None:
    """Make the project's FEATURES the four CPU-bound features."""
    package = project / "src" / MODULE / "features"
    (package / "bench_cpu.py").write_text(CPU_FEATURES)
    init = package / "__init__.py"
    text = init.read_text()
    start, end = text.index("FEATURES = ["), text.index("]", text.index("FEATURES = [")) + 1
    init.write_text(
        text[:start] + "from .bench_cpu import RankA, RankB, RankC, RankD  # noqa: E402\n\n"
        "FEATURES = [RankA, RankB, RankC, RankD]" + text[end:]
    )


PLAIN_TRAIN = """
import json, sys, numpy as np, pandas as pd
from pathlib import Path
from sklearn.ensemble import HistGradientBoostingClassifier

cache, params, seed = Path(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
def table(task, part):
    [folder] = [p.parent for p in (cache / task).glob("[!.]*/manifest.json")]
    return pd.read_parquet(folder / (part + ".parquet"))
features = json.loads(sys.argv[4])
x, x_test = (pd.concat([table(f, part).iloc[:, 1:] for f in features], axis=1) for part in ("train", "test"))
fold = table("Split", "folds")["fold"].to_numpy()
y = table("Ingest", "train")["target"].to_numpy()
oof, test = np.zeros(len(x)), np.zeros(len(x_test))
for k in range(fold.max() + 1):
    held = fold == k
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed, **params)
    model.fit(x[~held], y[~held])
    oof[held] = model.predict_proba(x[held])[:, 1]
    test += model.predict_proba(x_test)[:, 1] / (fold.max() + 1)
train = table("Train", "oof")["prediction"].to_numpy()
print(json.dumps({"same": bool(np.array_equal(oof, train))}))
"""


def train_figures(work: Path, options: argparse.Namespace) -> dict:
    """make train with WORKERS=1 and 2 on a smaller competition, and the plain loop."""
    project = bake(work / "train")
    write_competition(project / "data" / "raw", options.train_rows, options.train_rows // 4, options.seed)
    config = project / "luigi.cfg"
    config.write_text(config.read_text().replace("importance_repeats = 1", "importance_repeats = 0"))
    subprocess.run(make(project, "features"), check=True, capture_output=True)
    figures = {}
    for workers in (1, 2):
        subprocess.run(["rm", "-rf", *map(str, (project / "data" / "cache").glob("Train*"))], check=True)
        figures[f"train_{workers}_s"], figures[f"train_{workers}_mb"] = wall_and_peak(
            make(project, "train", f"WORKERS={workers}"), project
        )
    params = next(line for line in config.read_text().splitlines() if line.startswith("model_params"))
    features = ["NumericColumns", "CategoryCodes", "DateParts", "TargetEncoding"]
    args = [str(project / "data" / "cache"), params.partition("=")[2].strip(), "42", json.dumps(features)]
    figures["plain_s"], figures["plain_mb"] = wall_and_peak([sys.executable, "-c", PLAIN_TRAIN, *args], project)
    same = subprocess.run([sys.executable, "-c", PLAIN_TRAIN, *args], capture_output=True, text=True, check=True)
    figures["plain_same"] = json.loads(same.stdout)["same"]
    subprocess.run(["rm", "-rf", str(project)], check=True)
    return figures


def make(project: Path, *args: str) -> list[str]:
    return ["make", "--no-print-directory", "-C", str(project), *args, f"VENV={sys.prefix}"]


def features_seconds(project: Path, workers: int) -> float:
    for folder in (project / "data" / "cache").glob("Rank*"):
        subprocess.run(["rm", "-rf", str(folder)], check=True)
    seconds, _ = wall_and_peak(make(project, "features", f"WORKERS={workers}"), project)
    return seconds


def bake(output: Path) -> Path:
    """The default project, baked quietly into output."""
    command = [sys.executable, "-m", "cookiecutter", "--no-input", "--default-config", str(TEMPLATE), "-o", str(output)]
    subprocess.run(command, check=True, capture_output=True)
    return output / "kaggle-competition"


# --- the table --------------------------------------------------------------------------------


def row(name: str, value: str, baseline: str, ratio: float, goal: str, met: bool) -> str:
    return f"| {name} | {value} | {baseline} | {ratio:.2f}x | {goal} | {'yes' if met else 'NO'} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="train rows")
    parser.add_argument("--test-rows", type=int, default=1_000_000, help="test rows")
    parser.add_argument("--scale", type=int, default=4, help="how many times larger the second train.csv is")
    parser.add_argument("--repeat", type=int, default=10, help="runs of the up-to-date timing (median)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-rows", type=int, default=1_000_000, help="train rows of the Train figure")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-") as work:
        figures = measure(Path(work), options)
    print_table(figures, options)


def measure(work: Path, options: argparse.Namespace) -> dict:
    step = lambda text: print(f"... {text}", file=sys.stderr, flush=True)  # noqa: E731
    figures: dict = {"load_before": " ".join(f"{value:.1f}" for value in os.getloadavg())}
    project = bake(work / "large")
    raw = project / "data" / "raw"
    step(f"writing {options.rows:,} train and {options.test_rows:,} test rows")
    write_competition(raw, options.rows, options.test_rows, options.seed)
    figures["csv_mb"] = (raw / "train.csv").stat().st_size / 2**20

    step("baseline: pandas read_csv + train_test_split + to_csv")
    out = work / "baseline"
    out.mkdir()
    figures["base_s"], figures["base_mb"] = wall_and_peak(
        [sys.executable, "-c", BASELINE, str(raw / "train.csv"), str(out)], work
    )
    subprocess.run(["rm", "-rf", str(out)], check=True)

    step("pipeline: make split WORKERS=1 (RawData, Ingest, Split)")
    figures["split_s"], figures["split_mb"] = wall_and_peak(make(project, "split", "WORKERS=1"), project)

    step("reading 2 of 20 columns against all 20")
    env = {**os.environ, "PYTHONPATH": str(project / "src"), "LUIGI_CONFIG_PATH": str(project / "luigi.cfg")}
    result = subprocess.run(
        [sys.executable, "-c", READ_COLUMNS, "3"], cwd=project, env=env, capture_output=True, text=True, check=True
    )
    reads = json.loads(result.stdout)
    figures["read_two_s"], figures["read_all_s"] = reads["two"], reads["all"]

    step("make features: 4 CPU-bound features, WORKERS=1 then WORKERS=2")
    use_cpu_features(project)
    figures["features_1_s"] = features_seconds(project, 1)
    figures["features_2_s"] = features_seconds(project, 2)
    subprocess.run(["rm", "-rf", str(project / "data" / "cache")], check=True)

    step(f"pipeline on a train.csv {options.scale}x larger")
    larger = bake(work / "larger")
    write_competition(larger / "data" / "raw", options.rows * options.scale, options.test_rows, options.seed)
    figures["larger_csv_mb"] = (larger / "data" / "raw" / "train.csv").stat().st_size / 2**20
    subprocess.run(["rm", "-rf", str(project)], check=True)
    figures["larger_s"], figures["larger_mb"] = wall_and_peak(make(larger, "split", "WORKERS=1"), larger)
    subprocess.run(["rm", "-rf", str(larger)], check=True)

    step(f"make train on {options.train_rows:,} rows: WORKERS=1, WORKERS=2, a plain scikit-learn loop")
    figures.update(train_figures(work, options))

    step(f"up-to-date make all on the demo project, median of {options.repeat}")
    demo = bake(work / "demo")
    subprocess.run(make(demo, "all"), check=True, capture_output=True)
    figures["uptodate_s"] = median_seconds(make(demo, "all"), demo, options.repeat)
    figures["luigi_s"] = median_seconds([sys.executable, "-c", "import luigi"], demo, options.repeat)
    return figures


def print_table(f: dict, options: argparse.Namespace) -> None:
    rows = [
        row(
            "Ingest + Split of train, wall time",
            f"{f['split_s']:.1f} s",
            f"{f['base_s']:.1f} s (pandas read_csv + train_test_split + to_csv)",
            f["base_s"] / f["split_s"],
            "at least 5x faster",
            f["base_s"] / f["split_s"] >= 5,
        ),
        row(
            "Ingest + Split, peak memory",
            f"{f['split_mb']:.0f} MB",
            f"{f['base_mb']:.0f} MB (same baseline)",
            f["split_mb"] / f["base_mb"],
            "at most 0.3x",
            f["split_mb"] / f["base_mb"] <= 0.3,
        ),
        row(
            f"Ingest + Split, peak memory, train.csv {options.scale}x larger ({f['larger_csv_mb']:.0f} MB)",
            f"{f['larger_mb']:.0f} MB ({f['larger_s']:.1f} s)",
            f"{f['split_mb']:.0f} MB (the {f['csv_mb']:.0f} MB run)",
            f["larger_mb"] / f["split_mb"],
            "at most 1.2x",
            f["larger_mb"] / f["split_mb"] <= 1.2,
        ),
        row(
            "make features, 4 CPU-bound features, WORKERS=2",
            f"{f['features_2_s']:.1f} s",
            f"{f['features_1_s']:.1f} s (WORKERS=1)",
            f["features_1_s"] / f["features_2_s"],
            "at least 1.7x faster",
            f["features_1_s"] / f["features_2_s"] >= 1.7,
        ),
        row(
            "up-to-date make all",
            f"{f['uptodate_s']:.3f} s",
            f'{f["luigi_s"]:.3f} s (python -c "import luigi")',
            f["uptodate_s"] / f["luigi_s"],
            "at most 2x",
            f["uptodate_s"] / f["luigi_s"] <= 2,
        ),
        row(
            f"make train, {options.train_rows:,} rows, folds 2 at a time (WORKERS=2)",
            f"{f['train_2_s']:.1f} s, {f['train_2_mb']:.0f} MB",
            f"{f['train_1_s']:.1f} s, {f['train_1_mb']:.0f} MB (WORKERS=1)",
            f["train_1_s"] / f["train_2_s"],
            "faster",
            f["train_1_s"] / f["train_2_s"] > 1,
        ),
        row(
            "make train (WORKERS=2) against a plain scikit-learn loop over the folds",
            f"{f['train_2_s']:.1f} s, {f['train_2_mb']:.0f} MB",
            f"{f['plain_s']:.1f} s, {f['plain_mb']:.0f} MB (same predictions: {f['plain_same']})",
            f["plain_s"] / f["train_2_s"],
            "faster, less memory",
            f["plain_s"] / f["train_2_s"] > 1 and f["train_2_mb"] < f["plain_mb"] and f["plain_same"],
        ),
        row(
            "feature reading 2 of 20 columns",
            f"{f['read_two_s']:.3f} s",
            f"{f['read_all_s']:.3f} s (all 20)",
            f["read_all_s"] / f["read_two_s"],
            "at least 5x faster",
            f["read_all_s"] / f["read_two_s"] >= 5,
        ),
    ]
    load = " ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"{options.rows:,} train rows ({f['csv_mb']:.0f} MB CSV), {options.test_rows:,} test rows; "
        f"{os.cpu_count()} cores; load average {f['load_before']} before, {load} after; {time.strftime('%Y-%m-%d')}"
    )
    print("| figure | measured | baseline | ratio | goal | met |")
    print("|---|---|---|---|---|---|")
    for line in rows:
        print(line)


if __name__ == "__main__":
    main()
