"""`make status`: which tasks are complete and which `make all` would run, without running any."""

from __future__ import annotations

import luigi

from ..config import raw_dir, shown
from .dag import name_of, needs, upstream_first

COMPLETE, WOULD_RUN, NOT_CHECKED = "complete", "would run", "not needed"


def plan(root: luigi.Task) -> dict[str, str]:
    """Each task's state by task id, decided as Luigi's worker decides it: a complete task is
    not run and its upstream is not even checked; an incomplete one runs, after its upstream."""
    states: dict[str, str] = {}

    def visit(task: luigi.Task) -> None:
        if task.task_id in states:
            return
        states[task.task_id] = COMPLETE if task.complete() else WOULD_RUN
        if states[task.task_id] == WOULD_RUN:
            for dependency in needs(task):
                visit(dependency)

    visit(root)
    return states


def report(root: luigi.Task) -> list[str]:
    """One line per task of the graph, upstream first, then a summary."""
    states = plan(root)
    tasks = upstream_first(root)
    width = max(len(name_of(task)) for task in tasks)
    lines = []
    for task in tasks:
        where = getattr(task, "folder", None) or raw_dir()
        state = states.get(task.task_id, NOT_CHECKED)
        lines.append(f"{state:<10}  {name_of(task):<{width}}  {shown(where)}")
    to_run = [name_of(task) for task in tasks if states.get(task.task_id) == WOULD_RUN]
    if to_run:
        lines.append(f"make would run {len(to_run)} task(s): {', '.join(to_run)}")
    else:
        lines.append(f"{root.task_family} is complete: make runs nothing")
    return lines
