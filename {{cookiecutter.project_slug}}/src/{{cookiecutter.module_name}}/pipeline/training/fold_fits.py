"""The folds of a tune trial fitted side by side, each in a worker process that holds the data.

Tune fits every trial's folds on the same rows, so the feature matrix, target and fold masks go to
each worker once, when it starts, and a trial sends only its parameters. Processes, not threads
as in Train: at a few thousand rows a HistGradientBoosting fit spends much of its time in Python
between its OpenMP loops, and two fits in two threads of one process took turns on the GIL
(slower than one after the other), while two processes fit at full speed. A fit is the one
TrainFold does: the same rows, estimator, seeds and prediction, so a trial's CV is what
`make train` with its parameters reports.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

from ..resources.threads import for_fit

if TYPE_CHECKING:
    import numpy as np

    from .model import Model

_data: dict[str, Any] = {}  # this process's copy of what every fit reads (see FoldFits)


def _load(data: dict[str, Any]) -> None:
    _data.update(data)


def _start_worker(data: dict[str, Any], parent: int) -> None:
    """A worker's start: its data, and a thread that ends it once `parent` is gone (a killed tune
    would otherwise leave its workers waiting on a queue they hold open themselves)."""
    import threading

    _load(data)
    threading.Thread(target=_end_without, args=(parent,), daemon=True).start()


def _end_without(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _fit(k: int, params: dict[str, Any], threads: int) -> np.ndarray:
    """Fold k's held-out predictions by a model fitted on its fitting rows with `params`, once per
    seed and averaged, OpenMP limited to `threads`: what TrainFold predicts for the fold."""
    from threadpoolctl import threadpool_limits

    from .train import _Averaged, predicted

    model: Model = _data["model"]
    x, y, fits, problem_type = _data["x"], _data["y"], _data["fitting"][k], _data["problem_type"]
    with threadpool_limits(limits=threads, user_api="openmp"):
        rows = x[fits]
        models = [model.estimator(problem_type, params, seed, threads).fit(rows, y[fits]) for seed in _data["seeds"]]
        del rows
        averaged = _Averaged(models, lambda fitted, part: predicted(fitted, part, problem_type))
        return averaged.predict(x[_data["held_out"][k]])


class FoldFits:
    """Fits folds `workers` at a time: in that many processes (started once, each given `data`:
    model, problem_type, seeds, x, y and the per-fold boolean masks fitting / held_out), or in this
    process when workers is 1. A fit of fewer than `small_cells` cells gets one thread
    (threads.for_fit). Use as a context manager (the processes end with it)."""

    def __init__(self, data: dict[str, Any], workers: int, small_cells: int) -> None:
        self.workers = workers
        self.cells = [(int(rows.sum()), data["x"].shape[1]) for rows in data["fitting"]]
        self.small_cells = small_cells
        self.pool = None
        if workers > 1:
            # spawn, not fork: a forked child of a process whose OpenMP or Arrow threads have run
            # may hang; the workers import the libraries once, while the study loads.
            context = multiprocessing.get_context("spawn")
            self.pool = ProcessPoolExecutor(
                workers, mp_context=context, initializer=_start_worker, initargs=(data, os.getpid())
            )
            for _ in range(workers):  # start them now, not at the first trial
                self.pool.submit(int)
        else:
            _load(data)

    def __enter__(self) -> FoldFits:
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        _data.clear()

    def rounds(self, params: dict[str, Any], folds: list[int], threads: int) -> Iterator[list[tuple[int, np.ndarray]]]:
        """Each round of `workers` folds once all its fits are done: [(fold, held-out predictions)],
        in fold order. A round shares `threads` (the last, smaller one gets more each), as in Train;
        stopping between rounds (a pruned trial) leaves nothing running."""
        for start in range(0, len(folds), self.workers):
            round_ = folds[start : start + self.workers]
            share = max(1, threads // len(round_))
            counts = {k: for_fit(*self.cells[k], share, self.small_cells) for k in round_}
            if self.pool is None:
                yield [(k, _fit(k, params, counts[k])) for k in round_]
            else:
                futures = [self.pool.submit(_fit, k, params, counts[k]) for k in round_]
                yield [(k, future.result()) for k, future in zip(round_, futures, strict=True)]
