"""Threads per running task: the machine's cores shared among the pipeline tasks running now.

Every task process registers in `<cache>/.running/` while it runs. When a task starts its heavy
work it counts the live entries and limits OpenMP (scikit-learn's models), BLAS and Arrow to
`cores // running`: a task that runs alone (Ingest, the last fold of a model) uses every core,
and tasks that run side by side (features, folds, `WORKERS=2`) share them without
oversubscription. A thread count the user exported (`OMP_NUM_THREADS=...`) is left alone.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from .cache import pid_alive
from .config import cache_dir

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


@contextlib.contextmanager
def limited(threads: int | None = None) -> Iterator[int]:
    """OpenMP, BLAS and Arrow limited to `threads` (default: this task's share now) in the block."""
    import pyarrow
    from threadpoolctl import threadpool_limits

    threads = share() if threads is None else threads
    arrow_before = pyarrow.cpu_count()
    pyarrow.set_cpu_count(threads)
    try:
        with threadpool_limits(limits=threads):
            yield threads
    finally:
        pyarrow.set_cpu_count(arrow_before)
