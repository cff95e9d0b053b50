"""`python -m <package> <Task> [luigi options]`: Luigi's own command line, plus a short report.

Each task prints one line when it starts and one when it ends; a bad input stops the run
with one `ERROR:` line naming the file or setting; the exit code is luigi.cfg's [retcode].
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator

import luigi
import luigi.cmdline_parser
import luigi.configuration
import luigi.execution_summary
import luigi.interface
import luigi.retcodes
import luigi.worker

from .config import cache_dir, parameters_fixed, shown
from .errors import PipelineError, WriteError
from .runs.dag import name_of
from .storage.cache import hashes_fixed

TASKS_MODULE = f"{__package__}.tasks"
_USER_ERRORS = {f"{cls.__module__}.{cls.__name__}" for cls in (PipelineError, *PipelineError.__subclasses__())}
_started: dict[str, float] = {}
_preloaded: set[type] = set()  # kinds of task whose modules this process has loaded or is loading
_to_preload: dict[type, luigi.Task] = {}  # a task of each kind that will run, not loaded yet
_found: dict[type, set[luigi.Task]] = {}  # the tasks of each kind that will run
_loading: list[Iterator[None]] = []  # the steps left of the kind being loaded
_ahead: dict[str, tuple[luigi.worker.TaskProcess, int]] = {}  # task id: its process forked ahead, its start pipe
WAIT_SECONDS = 1.0  # between checks of a root task that another worker runs
MAX_ROUNDS = 4  # runs of the pipeline by a worker of luigid whose root others left unfinished


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
        _say(f"run   {name_of(task)}")


@luigi.Task.event_handler(luigi.Event.DEPENDENCY_DISCOVERED)
def _will_run(task: luigi.Task, _dependency: luigi.Task) -> None:
    """A task whose dependencies are being found is not complete: it will run, and what it imports
    can be loaded ahead (_PreloadingWorker). Found from the root down, so the last found runs first."""
    if hasattr(task, "preload") and type(task) not in _preloaded:
        _to_preload.setdefault(type(task), task)
    _found.setdefault(type(task), set()).add(task)


def _preload_step(fork_ahead: Callable[[luigi.Task], None] | None = None) -> None:
    """One step of loading the modules the tasks to run need (CachedTask.preload): kinds of task
    one after another, the last found (the first to run) first; a failure here is the task's to
    report when it runs. The one task of a kind that loads in a process of its own
    (CachedTask.fork_ahead) is handed to `fork_ahead` instead, when given."""
    if not _loading:
        task = _to_preload.pop(next(reversed(_to_preload)))
        _preloaded.add(type(task))
        if fork_ahead is not None and getattr(task, "fork_ahead", False) and len(_found[type(task)]) == 1:
            fork_ahead(task)
            return
        _loading.append(iter(task.preload()))
    try:
        next(_loading[0])
    except Exception:  # StopIteration: this kind is loaded; any other: the task meets it when it runs
        _loading.clear()


class _PreloadingWorker(luigi.worker.Worker):
    """Luigi's worker, loading in this process the modules of the tasks still to run while it waits
    for running ones: with `WORKERS=2` each task runs in a process forked from this one, which then
    starts with pandas, pyarrow and the model's library loaded instead of importing them again (0.4 s
    to 1.5 s a process).

    A task is forked as soon as it may run, loaded or not (the first one imports what it needs
    itself, side by side with this process loading the rest). The kinds of task are loaded in the
    order they run (Ingest's modules before Train's), one at a time between checks for a finished
    task, so that a task that may start does not wait for modules only later ones need. Forks and
    imports share this one thread, never overlapping. An up-to-date run loads none of them.

    Train's libraries are the largest (SciPy's statistics alone is one 0.3 s step, during which a
    finished task waits for its successor to start): Train's process is forked ahead instead, once
    the modules of the tasks before it are loaded, and loads them itself while those tasks run
    (CachedTask.fork_ahead)."""

    def _handle_next_task(self) -> None:
        while (_loading or _to_preload) and self._task_result_queue.empty():
            _preload_step(self._fork_ahead if self.worker_processes > 1 else None)
        super()._handle_next_task()

    def _fork_ahead(self, task: luigi.Task) -> None:
        """Start the process that will run `task` now: it loads the task's modules (preload()), then
        waits until Luigi starts the task (_create_task_process), or ends when the run ends without it.
        A task Luigi has already started (the first of the run) has its process: nothing to do."""
        if task.task_id in self._running_tasks:
            return
        process = self._task_process(task)
        told, tell = os.pipe()
        run = process.run

        def run_when_told() -> None:
            os.close(tell)
            with contextlib.suppress(Exception):  # a module that fails to load: the task reports it
                for _ in task.preload():
                    pass
            if os.read(told, 1) != b"1":  # the pipe closed: the run ended without this task
                os._exit(0)
            run()

        process.run = run_when_told
        with luigi.worker.fork_lock:
            process.start()
        os.close(told)
        _ahead[task.task_id] = (process, tell)

    def _create_task_process(self, task: luigi.Task):
        ahead = _ahead.pop(task.task_id, None)
        if ahead is None:
            return self._task_process(task)
        process, tell = ahead

        def start() -> None:  # what Luigi calls to start the task: it is told to run
            process.timeout_time = time.time() + process.worker_timeout if process.worker_timeout else None
            with contextlib.suppress(BrokenPipeError):  # it died waiting: Luigi reports its exit code
                os.write(tell, b"1")
            os.close(tell)

        process.start = start
        return process

    def _task_process(self, task: luigi.Task):
        """The process that runs a task computes each hash once: while a task runs, what it was
        made from is done and cannot change, and Luigi's check of its dependencies, the task's
        store() and its reads of upstream results would otherwise hash the whole upstream again each."""
        process = super()._create_task_process(task)
        run = process.run

        def run_with_fixed_hashes() -> None:
            with hashes_fixed():
                run()

        process.run = run_with_fixed_hashes
        return process


class _Factory(luigi.interface._WorkerSchedulerFactory):
    def create_worker(self, scheduler, worker_processes, assistant=False):
        return _PreloadingWorker(scheduler=scheduler, worker_processes=worker_processes, assistant=assistant)


def _schedule_and_run(root: luigi.Task):
    try:
        return luigi.interface._schedule_and_run([root], worker_scheduler_factory=_Factory())
    finally:
        _end_forked_ahead()


def _end_forked_ahead() -> None:
    """End the processes forked ahead for tasks this run did not start (a task before them
    failed, or another worker of luigid ran them)."""
    while _ahead:
        process, tell = _ahead.popitem()[1]
        os.close(tell)
        process.terminate()
        process.join()


def _close_start_pipes() -> None:
    """In every process forked from the run's: the start pipes of processes forked ahead are the
    run's alone, so that they close when the run ends, however it ends."""
    for _, tell in _ahead.values():
        os.close(tell)
    _ahead.clear()


os.register_at_fork(after_in_child=_close_start_pipes)


@luigi.Task.event_handler(luigi.Event.SUCCESS)
def _on_success(task: luigi.Task) -> None:
    if isinstance(task, luigi.WrapperTask):
        return
    seconds = time.perf_counter() - _started.get(task.task_id, time.perf_counter())
    where = getattr(task, "folder", None)
    _say(f"done  {name_of(task)} ({seconds:.1f} s){f'  {shown(where)}' if where else ''}")


@luigi.Task.event_handler(luigi.Event.FAILURE)
@luigi.Task.event_handler(luigi.Event.BROKEN_TASK)
def _on_failure(task: luigi.Task, error: BaseException) -> None:
    if isinstance(error, WriteError):  # the path alone does not say which task was writing
        _error(f"{task.task_family}: {error}")
    elif isinstance(error, PipelineError):
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


def _report(task: luigi.Task, args: list[str]) -> None:
    """After a successful run of Train or Submission: the CV score, the submission's path and the
    run record (written when this Train result or its submission has none yet). After Models: a
    record per model. After Blend: its two CV figures, weights, and its record and its models'."""
    from .runs.record import ensure_record

    if task.task_family in ("Blend", "Models"):
        with hashes_fixed():
            trains = task.requires()["trains"] if task.task_family == "Blend" else task.requires()
            for train in trains:
                facts, record = train.manifest()["facts"], shown(ensure_record(args, train))
                print(f"{train.model}: CV {facts['metric']} {facts['cv_score']:.5f}, run record {record}")
            if task.task_family == "Models":
                return
            facts = task.manifest()["facts"]
            weights = ", ".join(f"{name} {weight:.2f}" for name, weight in facts["weights"].items())
            nested, in_sample, method = facts["cv_score"], facts["cv_score_in_sample"], facts["method"]
            print(f"Blend ({method}) CV {facts['metric']}: nested {nested:.5f}, in-sample {in_sample:.5f}")
            print(f"Weights: {weights}")
            print(f"Run record: {shown(ensure_record(args, task))}")
        return
    if task.task_family not in ("Train", "Submission"):
        return
    from .training.train import Train

    with hashes_fixed():
        facts = (task.predictions() if task.task_family == "Submission" else Train()).manifest()["facts"]
        folds = ", ".join(f"{score:.5f}" for score in facts["fold_scores"])
        print(f"CV {facts['metric']}: {facts['cv_score']:.5f}  (folds: {folds})")
        if "target_scores" in facts:  # several targets: the CV above is their mean
            print("Targets: " + ", ".join(f"{name} {score:.5f}" for name, score in facts["target_scores"].items()))
        if task.task_family == "Submission":
            print(f"Submission: {shown(task.path())}")
        print(f"Run record: {shown(ensure_record(args))}")


def _run(argv: list[str]) -> int:
    """Luigi's `run_with_retcodes`, with the command line parsed once instead of four times (each
    parse builds Luigi's argument parser three times: a fifth of an up-to-date run) and each task's
    parameters resolved once (config.parameters_fixed), and the report after a successful run.
    Returns the exit code luigi.cfg's [retcode] gives."""
    with luigi.cmdline_parser.CmdlineParser.global_instance(argv) as parser, parameters_fixed():
        codes = luigi.retcodes.retcode()
        root = parser.get_task_obj()
        try:
            worker = _schedule_and_run(root).worker
        except luigi.interface.PidLockAlreadyTakenExit:
            return codes.already_running
        except Exception:
            luigi.interface.InterfaceLogging.setup(luigi.interface.core())
            logging.getLogger("luigi-interface").exception("Uncaught exception in luigi")
            return codes.unhandled_exception
        sets = _summary(worker)
        failures = (
            (codes.missing_data, "still_pending_ext"),
            (codes.task_failed, "failed"),
            (codes.already_running, "run_by_other_worker"),
            (codes.scheduling_error, "scheduling_error"),
            (codes.not_run, "not_run"),
        )
        code = max([value for value, status in failures if sets[status]], default=0)
        if not luigi.interface.core().local_scheduler:  # a worker of luigid: others ran some tasks
            code = _judged_by_the_root(root, worker, code or codes.task_failed)
        elif code == 0 and root not in sets["completed"] and root not in sets["already_done"]:
            return codes.not_run
        if code == 0:
            try:
                _report(root, argv[2:])
            except PipelineError as error:  # e.g. an unreadable run record: the results are there, the record is not
                _error(str(error))
                return 1
        return code


def _summary(worker) -> dict[str, set]:
    """The tasks of a run by what became of them (Luigi's execution summary)."""
    return luigi.execution_summary._summary_dict(worker)


def _judged_by_the_root(root: luigi.Task, worker, failure: int) -> int:
    """A worker of a central scheduler succeeds when the root task is complete, whoever ran it.

    Luigi's worker stops when nothing is left for it to run, which includes the root running on
    another worker: wait for that worker, and if it dies (luigid hands its task back after
    [scheduler] retry_delay), run what is left here."""
    rounds = 1
    while not root.complete():
        found = worker._scheduler.task_list(status="", upstream_status="", search=root.task_id)
        status = found.get(root.task_id, {}).get("status")
        if status == "PENDING" and rounds < MAX_ROUNDS:  # not for ever: what it needs may be disabled
            worker = _schedule_and_run(root).worker
            rounds += 1
        elif status == "RUNNING" or (status == "FAILED" and root not in _summary(worker)["failed"]):
            time.sleep(WAIT_SECONDS)
        else:
            break
    return 0 if root.complete() else failure


def _lock_in_project() -> None:
    """Luigi refuses to start a command line that is already running, keyed on the command line
    alone; keep those lock files in this project's cache so two projects never block each other."""
    config = luigi.configuration.get_config()
    if not config.has_option("core", "lock_pid_dir"):
        locks = cache_dir() / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        config.set("core", "lock_pid_dir", str(locks))


def main(argv: list[str] | None = None) -> None:
    argv = ["--module", TASKS_MODULE, *(sys.argv[1:] if argv is None else argv)]
    _lock_in_project()
    logging.getLogger("luigi-interface").addFilter(_OneLineForUserErrors())
    _exit(_run(argv))


def _exit(code: int) -> None:
    """End the process with the run's exit code, without the interpreter's teardown: once the
    results and the report are written there is nothing left to clean up, and freeing every module
    one by one (scikit-learn, SciPy, pandas) takes 0.2 s to 0.35 s, a tenth of a run that finds
    one feature changed. The task processes have all ended: they are reaped (their CPU time counts
    as this run's), and output is flushed."""
    import multiprocessing

    multiprocessing.active_children()  # waits for the ended ones
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
