"""`python -m <package> <Task> [luigi options]`: Luigi's own command line, plus a short report.

Each task prints one line when it starts and one when it ends; a bad input stops the run
with one `ERROR:` line naming the file or setting; the exit code is luigi.cfg's [retcode].
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import luigi
import luigi.cmdline_parser
import luigi.retcodes

from .errors import PipelineError

TASKS_MODULE = f"{__package__}.tasks"
_started: dict[str, float] = {}


@luigi.Task.event_handler(luigi.Event.START)
def _on_start(task: luigi.Task) -> None:
    _started[task.task_id] = time.perf_counter()
    print(f"run   {task.task_family}", flush=True)


@luigi.Task.event_handler(luigi.Event.SUCCESS)
def _on_success(task: luigi.Task) -> None:
    seconds = time.perf_counter() - _started.get(task.task_id, time.perf_counter())
    where = getattr(task, "folder", None)
    print(f"done  {task.task_family} ({seconds:.1f} s){f'  {_shown(where)}' if where else ''}", flush=True)


@luigi.Task.event_handler(luigi.Event.FAILURE)
@luigi.Task.event_handler(luigi.Event.BROKEN_TASK)
def _on_failure(task: luigi.Task, error: BaseException) -> None:
    if isinstance(error, PipelineError):
        print(f"ERROR: {error}", file=sys.stderr, flush=True)
    else:
        print(f"ERROR: {task.task_family} failed: {type(error).__name__}: {error}", file=sys.stderr, flush=True)


def _shown(path: Path) -> str:
    """A path as the user typed it: relative to the current folder when inside it."""
    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative


class _HideExpectedTracebacks(logging.Filter):
    """A PipelineError is the user's to fix and already printed as one line: drop its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], PipelineError))


def _report(argv: list[str]) -> None:
    """After a successful run of Train or Submission: the CV score and the submission's path."""
    with luigi.cmdline_parser.CmdlineParser.global_instance(argv) as parser:
        task = parser.get_task_obj()
        if task.task_family not in ("Train", "Submission"):
            return
        from .model.train import Train

        facts = Train().manifest()["facts"]
        folds = ", ".join(f"{score:.5f}" for score in facts["fold_scores"])
        print(f"CV {facts['metric']}: {facts['cv_score']:.5f}  (folds: {folds})")
        if task.task_family == "Submission":
            print(f"Submission: {_shown(task.path())}")


def main(argv: list[str] | None = None) -> None:
    argv = ["--module", TASKS_MODULE, *(sys.argv[1:] if argv is None else argv)]
    logging.getLogger("luigi-interface").addFilter(_HideExpectedTracebacks())
    try:
        luigi.retcodes.run_with_retcodes(argv)
    except SystemExit as done:
        if not done.code:
            _report(argv)
        raise


if __name__ == "__main__":
    main()
