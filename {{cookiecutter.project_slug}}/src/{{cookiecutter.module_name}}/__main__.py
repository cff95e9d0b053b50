"""`python -m <package> <Task> [luigi options]`: Luigi's own command line, plus a short report.

Each task prints one line when it starts and one when it ends; a bad input stops the run
with one `ERROR:` line naming the file or setting; the exit code is luigi.cfg's [retcode].
"""

from __future__ import annotations

import logging
import os
import sys
import time

import luigi
import luigi.cmdline_parser
import luigi.configuration
import luigi.retcodes

from .cache import hashes_fixed
from .config import cache_dir, shown
from .errors import PipelineError

TASKS_MODULE = f"{__package__}.tasks"
_USER_ERRORS = {f"{cls.__module__}.{cls.__name__}" for cls in (PipelineError, *PipelineError.__subclasses__())}
_started: dict[str, float] = {}


def _say(line: str, stream=sys.stdout) -> None:
    """Print one line with one write: tasks run in parallel processes, and a line written in
    one piece is never interleaved with another process's."""
    stream.flush()
    os.write(stream.fileno(), f"{line}\n".encode())


def _error(message: str) -> None:
    _say(f"ERROR: {message}", sys.stderr)


@luigi.Task.event_handler(luigi.Event.START)
def _on_start(task: luigi.Task) -> None:
    _started[task.task_id] = time.perf_counter()
    if not isinstance(task, luigi.WrapperTask):
        _say(f"run   {task.task_family}")


@luigi.Task.event_handler(luigi.Event.SUCCESS)
def _on_success(task: luigi.Task) -> None:
    if isinstance(task, luigi.WrapperTask):
        return
    seconds = time.perf_counter() - _started.get(task.task_id, time.perf_counter())
    where = getattr(task, "folder", None)
    _say(f"done  {task.task_family} ({seconds:.1f} s){f'  {shown(where)}' if where else ''}")


@luigi.Task.event_handler(luigi.Event.FAILURE)
@luigi.Task.event_handler(luigi.Event.BROKEN_TASK)
def _on_failure(task: luigi.Task, error: BaseException) -> None:
    if isinstance(error, PipelineError):
        _error(str(error))
    else:
        _error(f"{task.task_family} failed: {type(error).__name__}: {error}")


class _OneLineForUserErrors(logging.Filter):
    """A PipelineError is the user's to fix: show its message as one line instead of a traceback.

    Errors in run() arrive as exceptions, printed by _on_failure. Errors in complete() arrive
    as a Luigi warning holding a formatted traceback, whose last line names the exception.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], PipelineError):
            return False
        if record.levelno >= logging.WARNING and record.getMessage().startswith("Will not run"):
            name, _, message = record.getMessage().rstrip().splitlines()[-1].partition(": ")
            if name in _USER_ERRORS:
                _error(message)
                return False
        return True


def _report(argv: list[str]) -> None:
    """After a successful run of Train or Submission: the CV score, the submission's path and the
    run record (written when this Train result or its submission has none yet)."""
    with luigi.cmdline_parser.CmdlineParser.global_instance(argv) as parser, hashes_fixed():
        task = parser.get_task_obj()
        if task.task_family not in ("Train", "Submission"):
            return
        from .model.train import Train

        facts = Train().manifest()["facts"]
        folds = ", ".join(f"{score:.5f}" for score in facts["fold_scores"])
        print(f"CV {facts['metric']}: {facts['cv_score']:.5f}  (folds: {folds})")
        if task.task_family == "Submission":
            print(f"Submission: {shown(task.path())}")
        from .runs.record import ensure_record

        print(f"Run record: {shown(ensure_record(argv[2:]))}")


def _lock_in_project() -> None:
    """Luigi refuses to start a command line that is already running, keyed on the command line
    alone; keep those lock files in this project's cache so two projects never block each other."""
    config = luigi.configuration.get_config()
    if not config.has_option("core", "lock_pid_dir"):
        locks = cache_dir() / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        config.set("core", "lock_pid_dir", str(locks))


# Thread pools sized by these variables: OpenMP (scikit-learn's HistGradientBoosting), the BLAS
# libraries behind numpy, and Arrow's CPU pool (pyarrow reads OMP_NUM_THREADS when it starts).
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def _workers(argv: list[str]) -> int:
    """The --workers value of a Luigi command line (else luigi.cfg [core] workers, else 1)."""
    for i, arg in enumerate(argv):
        value = arg.partition("=")[2] if arg.startswith("--workers=") else None
        if arg == "--workers" and i + 1 < len(argv):
            value = argv[i + 1]
        if value is not None:
            return int(value) if value.isdigit() and int(value) > 0 else 1
    return luigi.configuration.get_config().getint("core", "workers", 1)


def limit_threads(workers: int) -> int:
    """Share the cores among the worker processes: each task may use cpu_count // workers
    threads, so parallel tasks never oversubscribe the machine. Set before numpy, pyarrow or
    scikit-learn are imported (the workers are forked from this process and inherit it); a
    value already in the environment wins."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = max(1, cores // max(1, workers))
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, str(threads))
    return threads


def main(argv: list[str] | None = None) -> None:
    argv = ["--module", TASKS_MODULE, *(sys.argv[1:] if argv is None else argv)]
    limit_threads(_workers(argv))
    _lock_in_project()
    logging.getLogger("luigi-interface").addFilter(_OneLineForUserErrors())
    try:
        luigi.retcodes.run_with_retcodes(argv)
    except SystemExit as done:
        if not done.code:
            try:
                _report(argv)
            except PipelineError as error:  # e.g. an unreadable run record: the results are there, the record is not
                _error(str(error))
                raise SystemExit(1) from None
        raise


if __name__ == "__main__":
    main()
