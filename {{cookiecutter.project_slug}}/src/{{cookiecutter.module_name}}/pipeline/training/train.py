"""Train: K-fold cross-validation on the registered features, out-of-fold and test predictions.

Each fold's model is a task of its own (TrainFold): folds fit side by side with `WORKERS=2`, a
killed run keeps the folds it finished, and Train only combines their predictions.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import luigi
import luigi.interface

from ..config import checked_competition, key_columns, target_columns, train
from ..data.ingest import Ingest
from ..data.split import Split
from ..registry import FEATURES, model_named, scoring
from ..resources.memory import return_freed_memory
from ..storage.cache import CachedTask, import_steps, module_hash
from .matrix import feature_columns, feature_matrix, keep, shared_reads
from .metrics import Metric, train_groups
from .model import Model

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

_read_once: dict | None = None  # while Train fits its folds: see _read_once_for_every_fold
STACKED_ROWS = 200_000  # rows per prediction call when measuring permutation importance
# What scikit-learn imports (every model's metrics use it), in steps of at most 0.4 s, SciPy's
# statistics the longest: the run's process checks for a finished task between steps.
SCIKIT_LEARN_IN_STEPS = ("scipy.sparse", "scipy.special", "scipy.linalg", "scipy.optimize", "scipy.stats", "sklearn")


class _ModelName(luigi.Parameter):
    """A model name whose default is `[train] model` as the run sees it (luigi.cfg or
    `--train-model`, what `make train MODEL=name` passes), so Train() is the configured model's."""

    def _get_value(self, task_name, param_name):
        from luigi.parameter import _no_value

        value = super()._get_value(task_name, param_name)
        return train().model if value is _no_value else value


class _CrossValidation(CachedTask):
    """What TrainFold and Train share: the model and its settings, the target as the model sees it
    and the names of the prediction columns."""

    model = _ModelName(description="a name in MODELS; unset: [train] model (make train MODEL=name)")

    def registered(self) -> Model:
        return model_named(self.model)

    def preload(self) -> Iterator[None]:
        yield from super().preload()
        yield from import_steps(*SCIKIT_LEARN_IN_STEPS)
        self.estimator()  # imports the model's library

    def seeds(self) -> list[int]:
        """The seeds each fold is fitted with (predictions averaged): [train] seeds, else the
        competition's seed."""
        return [int(seed) for seed in train().seeds] or [checked_competition().seed]

    def settings(self) -> dict[str, Any]:
        cfg = checked_competition()
        return {
            "problem_type": cfg.problem_type,
            **metric_settings(scoring()),
            "seed": cfg.seed,
            "seeds": self.seeds(),
            "model_params": self.registered().params(),
            "importance_repeats": train().importance_repeats,
        }

    def target(self, column: str = "") -> tuple[np.ndarray, list]:
        """Train's target (`column`; empty: the first target column) as the model takes it (class
        numbers for classification) and the classes in that order."""
        column = column or target_columns()[0]
        return _once(("target", column), lambda: self._target(column))

    def _target(self, column: str) -> tuple[np.ndarray, list]:
        import pandas as pd

        cfg = checked_competition()
        target = Ingest().load("train", columns=[column])[column]
        if cfg.problem_type == "regression":
            return target.to_numpy(dtype="float64"), []
        classes = sorted(target.unique().tolist())
        # The smallest integer type (int8 up to 127 classes): each fold holds its own copy, and
        # the model encodes the labels it is given anyway.
        return pd.Categorical(target, categories=classes).codes, classes

    def prediction_columns(self, classes: list) -> list[str]:
        if checked_competition().problem_type == "multiclass":
            return [str(label) for label in classes]
        return ["prediction"]

    def estimator(self, seed: int | None = None, threads: int = 1):
        """An unfitted estimator of the registered model, with luigi.cfg's parameters."""
        cfg = checked_competition()
        model = self.registered()
        return model.estimator(cfg.problem_type, model.params(), cfg.seed if seed is None else seed, threads)

    def predict(self, model, x: pd.DataFrame) -> np.ndarray:
        return predicted(model, x, checked_competition().problem_type)


class TrainFold(_CrossValidation):
    """One fold's model: fit on the other folds' rows, predicting the fold's rows and the test rows.

    Each fold is a cached result of its own: Train fits the missing ones, `WORKERS` at a time, and
    a killed Train keeps the folds it finished. Writes `oof` (the predictions of the fold's rows,
    in Ingest's order), `test` (this model's test predictions) and `importance` (permutation
    importance on the fold).
    """

    fold = luigi.IntParameter()
    target_column = luigi.Parameter(default="", description="the target column it predicts (empty: the first)")

    def requires(self) -> dict[str, Any]:
        return {"data": Ingest(), "split": Split(), "features": [feature() for feature in FEATURES]}

    def build(self) -> dict[str, pd.DataFrame]:
        import pandas as pd
        from threadpoolctl import threadpool_limits

        from ..resources import threads

        return_freed_memory()
        metric, groups = scoring(), train_groups()
        y, classes = self.target(self.target_column)
        held_out, fits = fold_rows(self.fold)
        made_by = feature_columns(self.requires()["features"])

        seconds = {"load": -time.perf_counter()}
        x = feature_matrix(made_by, "train", fits)  # the one copy of the fitting rows
        seconds["fit"] = -time.perf_counter()
        seconds["load"] -= seconds["fit"]
        seeds = self.seeds()
        fit_threads = threads.for_fit(*x.shape, self.threads, train().small_fit_cells)
        with threadpool_limits(limits=fit_threads, user_api="openmp"):  # this thread's OpenMP pool
            models = [self.estimator(seed, fit_threads).fit(x, y[fits]) for seed in seeds]
            fit_threads = threads.openmp_threads()  # the OpenMP threads of this thread: those the fit used
        seconds["predict"] = -time.perf_counter()
        seconds["fit"] -= seconds["predict"]
        del x
        x = feature_matrix(made_by, "train", held_out)
        model = _Averaged(models, self.predict)
        oof = model.predict(x)
        score = metric(y[held_out], _squeeze(oof), _rows(groups, held_out))
        importance = self.permutation_importance(model, x, y[held_out], score, _rows(groups, held_out))
        test = model.predict(feature_matrix(made_by, "test"))
        seconds["predict"] += time.perf_counter()

        self.facts.update(
            score=score,
            classes=[_plain(c) for c in classes],
            n_columns=len(made_by),
            fit_threads=fit_threads,
            model=self.model,
            seeds=seeds,
            seconds={phase: round(value, 3) for phase, value in seconds.items()},
        )
        columns = self.prediction_columns(classes)
        return {
            "oof": pd.DataFrame(oof, columns=columns),
            "test": pd.DataFrame(test, columns=columns),
            "importance": importance,
        }

    def permutation_importance(self, model, x: pd.DataFrame, y: np.ndarray, score: float, groups=None) -> pd.DataFrame:
        """How much one fold's score worsens when a column's values are shuffled among its held-out
        rows (positive: the model uses the column). The model is not refit, and shuffled copies are
        stacked into few large predictions (at most STACKED_ROWS rows each), which keeps it cheap."""
        import numpy as np
        import pandas as pd

        cfg = checked_competition()
        metric = scoring()
        sign = 1.0 if metric.greater_is_better else -1.0
        rng = np.random.default_rng([cfg.seed, self.fold])
        jobs = [(repeat, column) for repeat in range(train().importance_repeats) for column in x.columns]
        per_call = max(1, STACKED_ROWS // max(len(x), 1))
        drops = []
        for start in range(0, len(jobs), per_call):
            copies = []
            for _, column in jobs[start : start + per_call]:
                shuffled = x.copy()
                shuffled[column] = pd.Series(x[column].array.take(rng.permutation(len(x))), index=x.index)
                copies.append(shuffled)
            predicted = model.predict(pd.concat(copies, ignore_index=True))
            for i in range(len(copies)):
                part = _squeeze(predicted[i * len(x) : (i + 1) * len(x)])
                drops.append(sign * (score - metric(y, part, groups)))
        return pd.DataFrame({"column": [c for _, c in jobs], "repeat": [r for r, _ in jobs], "drop": drops})


class Train(_CrossValidation):
    """K-fold cross-validation of the model on the registered features: one TrainFold per fold (and
    per target column, when there are several), combined here.

    Writes `oof` (key columns, target, fold and the prediction of the model that did not see the row), `test`
    (test predictions averaged over the fold models), `scores` (the CV score per fold) and
    `importance` (permutation importance of each column on the held-out rows); the manifest's
    facts hold the overall CV score. Several targets: a prediction column per target, named after it
    (oof then holds no target values: Ingest's train has them), and the CV score is the metric's mean
    over the targets, each target's in the facts' target_scores.
    """

    fork_ahead: ClassVar[bool] = True  # the model's library loads in Train's process while the features run

    def requires(self) -> dict[str, Any]:
        return {"data": Ingest(), "split": Split(), "features": [feature() for feature in FEATURES]}

    def parts(self, target: str | None = None) -> list[TrainFold]:
        """The folds' tasks: of one target column, or of every one (one model per target, same folds)."""
        targets = [target] if target is not None else self.targets()
        folds = range(checked_competition().n_folds)
        return [TrainFold(model=self.model, fold=k, target_column=t) for t in targets for k in folds]

    def targets(self) -> list[str]:
        """TrainFold's target_column for each target column (one column: its default, empty)."""
        names = target_columns()
        return names if len(names) > 1 else [""]

    def fit_folds(self) -> None:
        """Fit the folds that have no result yet, in threads of this process: the libraries are
        loaded once and each fold holds only its own rows. `WORKERS` folds fit at once, sharing the
        task's threads (the last, smaller round gets more each), and each fold's result is cached as
        soon as it is written. Split's folds, the target and the feature matrix are read once for them
        all (matrix.shared_reads)."""
        from concurrent.futures import ThreadPoolExecutor

        return_freed_memory()  # the folds' rows are read and dropped column by column
        missing = [fold for fold in self.parts() if not fold.complete()]
        if not missing:  # a killed Train had finished them all
            return
        with _read_once_for_every_fold():
            made_by = feature_columns(self.requires()["features"])
            at_once = min(luigi.interface.core().workers, len(missing))
            self.estimator()  # loads the model's library, so that each thread's limit reaches its OpenMP pool
            cells = Ingest().manifest()["facts"]["rows"]["train"] * len(made_by)
            with shared_reads(cells), ThreadPoolExecutor(at_once) as pool:
                keep(made_by, ["train", "test"])
                for start in range(0, len(missing), at_once):
                    round_ = missing[start : start + at_once]
                    share = max(1, self.threads // len(round_))
                    for done in [pool.submit(_fit_fold, fold, share) for fold in round_]:
                        done.result()

    def build(self) -> dict[str, pd.DataFrame]:
        import numpy as np
        import pandas as pd

        self.fit_folds()
        cfg = checked_competition()
        metric, groups = scoring(), train_groups()
        keys, targets = key_columns(), target_columns()
        fold = Split().load("folds", columns=["fold"])["fold"].to_numpy()
        test_ids = Ingest().load("test", columns=keys)
        per_target = {
            name: self.combined(target, fold, len(test_ids), metric, groups)
            for name, target in zip(targets, self.targets(), strict=True)
        }
        if len(targets) == 1:
            [(oof, test, fold_scores, cv_score, classes, importance)] = per_target.values()
            columns = self.prediction_columns(classes)
            rows = Ingest().load("train", columns=[*keys, *targets])
        else:  # a column per target, named after it; the CV score is the mean of the targets'
            oof, test = (np.concatenate([part[i] for part in per_target.values()], axis=1) for i in (0, 1))
            fold_scores = np.mean([part[2] for part in per_target.values()], axis=0).tolist()
            cv_score = float(np.mean([part[3] for part in per_target.values()]))
            classes, columns = per_target[targets[0]][4], targets
            importance = [table for part in per_target.values() for table in part[5]]
            rows = Ingest().load("train", columns=keys)
            self.facts.update(
                target_scores={name: part[3] for name, part in per_target.items()},
                target_fold_scores={name: part[2] for name, part in per_target.items()},
            )

        made_by = feature_columns([feature() for feature in FEATURES])
        self.facts.update(
            model=self.model,
            seeds=self.seeds(),
            metric=metric.name,
            cv_score=cv_score,
            fold_scores=fold_scores,
            greater_is_better=metric.greater_is_better,
            classes=[_plain(c) for c in classes],
            features=[feature.__name__ for feature in FEATURES],
            n_columns=len(made_by),
        )
        return {
            "oof": pd.concat([rows.assign(fold=fold), pd.DataFrame(oof, columns=columns)], axis=1),
            "test": pd.concat([test_ids, pd.DataFrame(test, columns=columns)], axis=1),
            "scores": pd.DataFrame({"fold": range(cfg.n_folds), metric.name: fold_scores}),
            "importance": self.importance_table(importance, {c: t.task_family for c, t in made_by.items()}),
        }

    def combined(self, target: str, fold: np.ndarray, n_test: int, metric: Metric, groups):
        """One target's folds put together: (oof, test predictions, fold scores, CV score, classes,
        the folds' importance tables)."""
        import numpy as np

        y, classes = self.target(target)
        columns = self.prediction_columns(classes)
        oof, test = np.zeros((len(y), len(columns))), np.zeros((n_test, len(columns)))
        oof[fold < 0] = np.nan  # rows no fold validates (time folds): left out of the CV score
        fold_scores, importance = [], []
        parts = self.parts(target)
        for k, task in enumerate(parts):
            oof[fold == k] = task.load("oof").to_numpy()
            test += task.load("test").to_numpy() / len(parts)
            fold_scores.append(task.manifest()["facts"]["score"])
            importance.append(task.load("importance"))
        scored = fold >= 0
        cv_score = metric(y[scored], _squeeze(oof[scored]), _rows(groups, scored))
        return oof, test, fold_scores, cv_score, classes, importance

    def importance_table(self, per_fold: list[pd.DataFrame], made_by: dict[str, str]) -> pd.DataFrame:
        """Mean and spread of each column's importance over folds and repeats, most important first,
        with the feature task that made the column (made_by: column -> task)."""
        import pandas as pd

        drops = pd.concat(per_fold, ignore_index=True)
        table = drops.groupby("column", sort=False)["drop"].agg(importance="mean", std="std").reset_index()
        table.insert(1, "feature", table["column"].map(made_by).astype("string"))
        return table.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)


@contextlib.contextmanager
def _read_once_for_every_fold() -> Iterator[None]:
    """Within the block (Train fitting its folds, in threads of one process), Split's folds and
    each target column are read once for every fold instead of once per fold."""
    global _read_once
    _read_once = {}
    try:
        yield
    finally:
        _read_once = None


def _once(key: Any, read: Callable[[], Any]) -> Any:
    """read(), or within _read_once_for_every_fold() its value for `key`, read once."""
    if _read_once is None:
        return read()
    if key not in _read_once:
        _read_once[key] = read()
    return _read_once[key]


def split_folds() -> pd.DataFrame:
    """Split's `fold` of each row, and with time folds its `fits` column."""
    return _once("folds", _split_folds)


def _split_folds() -> pd.DataFrame:
    import pyarrow.parquet as pq

    split = Split()
    with split.reading("folds") as path:  # a damaged file: one line naming the result
        names = pq.read_schema(path).names
    return split.load("folds", columns=[c for c in ("fold", "fits") if c in names])


def fold_rows(k: int) -> tuple[np.ndarray, np.ndarray]:
    """(held out, fitting rows) of fold k as boolean masks: the other folds' rows, or with time
    folds the rows earlier than fold k's block (Split's `fits` column)."""
    folds = split_folds()
    held_out = folds["fold"].to_numpy() == k
    return held_out, (folds["fits"].to_numpy() <= k) if "fits" in folds else ~held_out


def _fit_fold(fold: TrainFold, threads: int) -> None:
    """Write one fold's result in this thread, its OpenMP pool limited to `threads` (the limit is
    the calling thread's own), with the pipeline's `run`/`done` lines (an error is Train's to report)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api="openmp"):
        fold.trigger_event(luigi.Event.START, fold)
        try:
            fold.store(threads)
        finally:
            return_freed_memory()  # before the next fold: what this one freed, the next may not reuse
        fold.trigger_event(luigi.Event.SUCCESS, fold)


def predicted(model, x: pd.DataFrame, problem_type: str) -> np.ndarray:
    """A fitted model's predictions as columns: the number (regression), the positive class's
    probability (binary) or each class's (multiclass)."""
    if problem_type == "regression":
        return model.predict(x)[:, None]
    proba = model.predict_proba(x)
    return proba[:, 1:] if problem_type == "binary" else proba


class _Averaged:
    """The models of one fold's seeds as one: predictions averaged (one seed: that model's own)."""

    def __init__(self, models: list, predict) -> None:
        self.models, self._predict = models, predict

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        predictions = [self._predict(model, x) for model in self.models]
        if len(predictions) == 1:
            return predictions[0]
        return sum(predictions) / len(predictions)


def metric_settings(metric: Metric) -> dict[str, Any]:
    """What of the metric a CV result depends on: its name, its groups, and its code (a metric of
    yours edited re-scores)."""
    import sys

    module = getattr(metric.score, "func", metric.score).__module__  # a family's member: the family's
    yours = not module.startswith(__package__.rpartition(".")[0] + ".") and hasattr(sys.modules.get(module), "__file__")
    group_column = checked_competition().group_column.strip()
    return {
        "metric": metric.name,
        **({"group_column": group_column} if group_column else {}),
        **({"metric_code": module_hash(module)} if yours else {}),
    }


def _rows(groups, rows: np.ndarray):
    """The groups of some rows (a boolean mask), or None without groups."""
    return None if groups is None else groups[rows]


def _squeeze(prediction: np.ndarray) -> np.ndarray:
    return prediction[:, 0] if prediction.shape[1] == 1 else prediction


def _plain(value: Any) -> Any:
    """A class label as JSON can hold it (numpy scalars become Python ones)."""
    return value.item() if hasattr(value, "item") else value


class Models(luigi.WrapperTask):
    """Train every model in MODELS (`make models`), `WORKERS` at a time, on the one Split."""

    def requires(self) -> list[Train]:
        from ..registry import MODELS

        return [Train(model=cls.name) for cls in MODELS]
