"""Tune: an Optuna study of one model's parameters, scored by its CV on the cached features and folds.

The study is a journal file in the cache (data/cache/Tune/<model>-<hash>/journal.log, the hash
covering the Split, the features and the metric), so a killed tune resumes with its finished
trials, and `make tune TRIALS=n` runs trials until n have finished. Features are read once and
never rebuilt; each trial fits the folds side by side in worker processes (fold_fits.py), as
TrainFold fits them, and may be pruned after each round of folds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import luigi

from ..config import cache_dir, checked_competition, runs_dir, shown, target_columns
from ..config import train as train_config
from ..data.ingest import Ingest
from ..data.split import Split
from ..errors import ConfigError, imported
from ..registry import FEATURES, scoring
from ..storage.cache import _hash_of, atomic_file
from .fold_fits import FoldFits
from .matrix import feature_columns, feature_matrix
from .metrics import train_groups
from .train import Train, _rows, fold_rows, metric_settings


class Tune(luigi.Task):
    """Trials of `model` until `trials` have finished; the best parameters go to
    runs/tune-<model>.json, with the `[model.<name>] params` line to paste into luigi.cfg."""

    model = luigi.Parameter(default="hgb")
    trials = luigi.IntParameter(default=20)

    def requires(self) -> dict[str, Any]:
        return {"data": Ingest(), "split": Split(), "features": [feature() for feature in FEATURES]}

    def study_folder(self) -> Path:
        train = Train(model=self.model)
        cfg = checked_competition()
        spec = {"upstream": train.spec()["upstream"], "metric": cfg.metric, "seed": cfg.seed}
        if metric_settings(scoring()).keys() - {"metric"}:  # a study by groups or a metric of yours: its own folder
            spec["scoring"] = metric_settings(scoring())
        return cache_dir() / "Tune" / f"{self.model}-{_hash_of(spec)}"

    def result_path(self) -> Path:
        return runs_dir() / f"tune-{self.model}.json"

    def study(self):
        optuna = imported("optuna", "make tune")
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        cfg = checked_competition()
        metric = scoring()
        folder = self.study_folder()
        folder.mkdir(parents=True, exist_ok=True)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        return optuna.create_study(
            study_name=self.model,
            storage=JournalStorage(JournalFileBackend(str(folder / "journal.log"))),
            direction="maximize" if metric.greater_is_better else "minimize",
            sampler=optuna.samplers.TPESampler(seed=cfg.seed),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=5),
            load_if_exists=True,
        )

    def finished(self, study) -> int:
        from optuna.trial import TrialState

        return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))

    def complete(self) -> bool:
        if not self.result_path().is_file() or not (self.study_folder() / "journal.log").is_file():
            return False
        return json.loads(self.result_path().read_text()).get("finished_trials", 0) >= self.trials

    def run(self) -> None:
        from ..resources import threads

        with threads.running(), threads.limited() as count:
            self.tune(count)

    def tune(self, threads: int) -> None:
        import numpy as np

        cfg = checked_competition()
        if len(target_columns()) > 1:
            raise ConfigError(
                "make tune tunes a model of one target: luigi.cfg [competition] target_column names several"
            )
        metric, groups = scoring(), train_groups()
        train = Train(model=self.model)
        model = train.registered()
        base = model.params()
        study = self.study()
        y, classes = train.target()
        fold = Split().load("folds", columns=["fold"])["fold"].to_numpy()
        folds = list(range(cfg.n_folds))
        data = {
            "model": model,
            "problem_type": cfg.problem_type,
            "seeds": train.seeds(),
            "x": feature_matrix(feature_columns(self.requires()["features"]), "train"),  # read once for every trial
            "y": y,
            "fitting": [fold_rows(k)[1] for k in folds],
            "held_out": [fold == k for k in folds],
        }
        columns = len(train.prediction_columns(classes))

        def objective(trial) -> float:
            import optuna

            params = {**base, **model.search(trial)}
            oof = np.zeros((len(y), columns))
            for done in fits.rounds(params, folds, threads):
                for k, prediction in done:
                    oof[fold == k] = prediction
                    if k < folds[-1]:
                        seen = (fold <= k) & (fold >= 0)
                        trial.report(metric(y[seen], _squeeze(oof[seen]), _rows(groups, seen)), k)
                if done[-1][0] < folds[-1] and trial.should_prune():
                    raise optuna.TrialPruned()
            return metric(y[fold >= 0], _squeeze(oof[fold >= 0]), _rows(groups, fold >= 0))

        left = self.trials - self.finished(study)
        if left > 0:
            with FoldFits(data, min(threads, len(folds)), train_config().small_fit_cells) as fits:
                study.optimize(objective, n_trials=left)
        best = study.best_trial
        params = {**base, **best.params}
        result = {
            "model": self.model,
            "metric": metric.name,
            "best_cv_score": best.value,
            "best_params": params,
            "best_trial": best.number,
            "finished_trials": self.finished(study),
            "study": shown(self.study_folder() / "journal.log"),
            "luigi_cfg": f"[model.{self.model}]\nparams = {json.dumps(params)}",
        }
        with atomic_file(self.result_path()) as tmp:
            tmp.write_text(json.dumps(result, indent=2) + "\n")
        print(f"Tune {self.model}: best CV {metric.name} {best.value:.5f} (trial {best.number})")
        print(f"Best parameters in {shown(self.result_path())}; to adopt them, put in luigi.cfg:")
        print(result["luigi_cfg"])


def _squeeze(prediction):
    return prediction[:, 0] if prediction.shape[1] == 1 else prediction
