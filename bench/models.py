"""Benchmark: models, blend and tune on one baked project, in one run.

Bakes the default (binary) project and writes a bench competition into data/raw: scikit-learn's
make_classification (ROWS rows, 20 numbers, 10 informative) plus two string categories, so the
models differ. Prints, with the commands run:
- the CV of each model (`make models`) and of the blend (`make blend`, METHOD=weights and stack:
  in-sample and nested);
- the wall time of `make models` with WORKERS=1 and WORKERS=2 (Train folders removed between);
- the time of a 20-trial `make tune MODEL=hgb` against 20 `make train` runs, each with the hgb
  parameters of one of the tune's trials (`--train-model-params`), features cached in both
  cases; and their ratio.
Usage: python bench/models.py [ROWS]   (default 20000). Needs lightgbm, xgboost and optuna.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]
TRIALS = 20


def write_competition(raw: Path, rows: int) -> None:
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=rows, n_features=20, n_informative=10, flip_y=0.05, random_state=0)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(20)])
    frame["shade"] = np.where(x[:, 0] + rng.normal(0, 1, rows) > 0, "dark", "light")
    frame["tag"] = [f"t{value}" for value in rng.integers(0, 50, rows)]
    frame.insert(0, "id", np.arange(rows))
    test_rows = rows // 4
    train, test = frame.iloc[test_rows:].assign(target=y[test_rows:]), frame.iloc[:test_rows]
    raw.mkdir(parents=True, exist_ok=True)
    train.to_csv(raw / "train.csv", index=False)
    test.to_csv(raw / "test.csv", index=False)
    test[["id"]].assign(target=0.5).to_csv(raw / "sample_submission.csv", index=False)


def trial_params(project: Path) -> tuple[list[dict], int]:
    """The full hgb parameters of each trial of the tune, in order (pruned ones too: by hand, every
    trial is a whole make train), and how many trials the tune pruned."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    (journal,) = (project / "data" / "cache" / "Tune").glob("hgb-*/journal.log")
    study = optuna.load_study(study_name="hgb", storage=JournalStorage(JournalFileBackend(str(journal))))
    base = {"max_iter": 200, "learning_rate": 0.05}  # luigi.cfg [train] model_params, laid under each trial's
    trials = study.get_trials(deepcopy=False)
    return [{**base, **trial.params} for trial in trials], sum(trial.state.name == "PRUNED" for trial in trials)


def make(project: Path, *args: str) -> tuple[float, str]:
    command = ["make", "--no-print-directory", "-C", str(project), *args, f"VENV={sys.prefix}"]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode:
        sys.exit(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return seconds, result.stdout


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=tmp, default_config=True))
        write_competition(project / "data" / "raw", rows)
        print(f"bench competition: make_classification, {rows} rows, 20 numbers + 2 categories; {project.name}")
        make(project, "features")
        cache = project / "data" / "cache"
        times = {}
        for workers in (1, 2):
            for task in ("Train", "TrainFold"):
                shutil.rmtree(cache / task, ignore_errors=True)
            times[workers], _ = make(project, "models", f"WORKERS={workers}")
            print(f"make models WORKERS={workers}: {times[workers]:.1f} s")
        print(f"ratio WORKERS=1 / WORKERS=2: {times[1] / times[2]:.2f}")
        for folder in sorted((cache / "Train").glob("*/manifest.json")):
            facts = json.loads(folder.read_text())["facts"]
            print(f"CV {facts['metric']} {facts['model']:7s} {facts['cv_score']:.5f}")
        for method in ("weights", "stack"):
            _, out = make(project, "blend", "MODELS=hgb linear lgbm xgb", f"METHOD={method}")
            print("\n".join(line for line in out.splitlines() if line.startswith(("Blend (", "Weights"))))

        tune, _ = make(project, "tune", "MODEL=hgb", f"TRIALS={TRIALS}")
        print(f"make tune MODEL=hgb TRIALS={TRIALS}: {tune:.1f} s")
        every, pruned = trial_params(project)
        print(f"trials the tune pruned (stopped after a round of folds): {pruned} of {len(every)}")
        started = time.perf_counter()
        for params in every:
            make(project, "train", f"LUIGI_ARGS=--train-model-params '{json.dumps(params)}'")
        trains = time.perf_counter() - started
        print(f"{TRIALS} x make train (each with one trial's hgb parameters): {trains:.1f} s")
        print(f"ratio {TRIALS} make train / tune: {trains / tune:.2f}")


if __name__ == "__main__":
    main()
