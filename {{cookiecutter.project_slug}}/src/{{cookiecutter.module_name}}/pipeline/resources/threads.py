"""Threads per running task: the machine's cores shared among the pipeline tasks running now.

Every task process registers in `<cache>/.running/` while it runs. When a task starts its heavy
work it counts the live entries and limits OpenMP (scikit-learn's models), BLAS and Arrow to
`cores // running`: a task that runs alone (Ingest, Train) uses every core, and tasks that run
side by side (features with `WORKERS=2`) share them without oversubscription. Train shares its
own threads among the folds it fits at once (training/train.py). A thread count the user exported
(`OMP_NUM_THREADS=...`) is left alone.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from ..config import cache_dir
from .processes import pid_alive

# The variable the user sets to fix thread counts; read at import, before any library sets it.
USER_CHOICE = "OMP_NUM_THREADS"
_user_threads = os.environ.get(USER_CHOICE)


def cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers and taskset narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _registry():
    return cache_dir() / ".running"


@contextlib.contextmanager
def running() -> Iterator[None]:
    """Count this process among the running tasks for the block (one entry per process: a
    process runs one task at a time)."""
    entry = _registry() / str(os.getpid())
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.touch()
    try:
        yield
    finally:
        entry.unlink(missing_ok=True)


def running_now() -> int:
    """How many task processes are running (entries of processes that died are ignored and removed)."""
    live = 0
    for entry in _registry().glob("*"):
        if entry.name.isdigit() and pid_alive(int(entry.name)):
            live += 1
        else:
            entry.unlink(missing_ok=True)
    return max(live, 1)


def share() -> int:
    """Threads this task may use now: its share of the cores among the tasks running now."""
    if _user_threads is not None:
        return max(1, int(_user_threads)) if _user_threads.isdigit() else cores()
    return max(1, cores() // running_now())


# Thread pools a library sizes from these when it loads: set them too, for the libraries a task
# imports after its limit is set (threadpoolctl reaches only the ones already loaded).
VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


@contextlib.contextmanager
def limited(threads: int | None = None) -> Iterator[int]:
    """OpenMP, BLAS and Arrow limited to `threads` (default: this task's share now) in the block:
    the pools of libraries loaded already, and of those loaded within the block."""
    import pyarrow
    from threadpoolctl import threadpool_limits

    threads = share() if threads is None else threads
    saved = {name: os.environ.get(name) for name in VARIABLES}
    os.environ.update(dict.fromkeys(VARIABLES, str(threads)))
    arrow_before = pyarrow.cpu_count()
    pyarrow.set_cpu_count(threads)
    try:
        with threadpool_limits(limits=threads):
            yield threads
    finally:
        pyarrow.set_cpu_count(arrow_before)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def for_fit(rows: int, columns: int, share: int, small_cells: int) -> int:
    """Threads for one model fit: the task's `share`, or one when the fit is small (fewer than
    `small_cells` rows x columns: `[train] small_fit_cells`) and the user exported no thread count.
    A small fit's OpenMP threads meet at a barrier many times a second and spin there waiting for
    each other: on a quiet machine a second thread gains nothing below about 200,000 cells, and on a
    busy one a descheduled thread stalls the rest (a 900-row fit took 3.7x as long at two threads as
    at one, with two busy neighbours on 2 cores)."""
    if _user_threads is not None or rows * columns >= small_cells:
        return share
    return 1


def openmp_threads() -> int:
    """The threads an OpenMP parallel region of this process would use now (as measured by
    threadpoolctl over the OpenMP runtimes loaded; 1 when none is)."""
    from threadpoolctl import threadpool_info

    return max([pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "openmp"], default=1)
