"""`make rerun RUN=<id>`: the exact commands that re-create a past run, and whether the current
tree already does (then `make all` reuses the cached results and runs nothing)."""

from __future__ import annotations

import shlex
from typing import Any

import luigi

from ..storage.cache import CachedTask
from . import environment
from .dag import name_of, upstream_first


def make_command(record: dict[str, Any]) -> str:
    """`make all` with the run's command-line overrides: SEED=n, the rest as LUIGI_ARGS."""
    args, variables = list(record["params"]["overrides"]), []
    if "--competition-seed" in args:
        at = args.index("--competition-seed")
        variables.append(f"SEED={args[at + 1]}")
        del args[at : at + 2]
    if args:
        variables.append(f"LUIGI_ARGS={shlex.quote(' '.join(args))}")
    return " ".join(["make all", *variables])


def commands(record: dict[str, Any], install: bool = False) -> list[str]:
    """Shell lines that check out the run's code and run it again (install: `make install` first,
    when today's environment is not the run's)."""
    git, run = record["git"], record["run_id"]
    if not git.get("repository") or not git.get("commit"):
        return [
            f"# {git.get('note', 'no commit recorded')}: the code cannot be checked out again",
            *(["make install"] if install else []),
            make_command(record),
        ]
    lines = ["git stash --include-untracked   # only if you have uncommitted changes to keep"]
    if git.get("patch"):
        saved = "${TMPDIR:-/tmp}/" + run + ".patch"
        lines.insert(0, f'cp {git["patch"]} "{saved}"   # first: {git["patch"]} may not exist at that commit')
    lines.append(f"git checkout {git['commit']}")
    if git.get("patch"):
        project = git.get("project_dir", ".")
        apply = f'git apply "{saved}"'
        lines.append(apply if project in ("", ".") else f'(cd "$(git rev-parse --show-toplevel)" && {apply})')
    if install:
        lines.append("make install   # the run's requirements.lock, exactly")
    lines.append(make_command(record))
    return lines


def differences(record: dict[str, Any], root: luigi.Task) -> tuple[list[str], list[str]]:
    """(tasks whose hash differs from the record's, tasks whose recorded folder is gone)."""
    tasks = upstream_first(root)
    recorded = record["tasks"]
    changed, missing, names = [], [], set()
    for task in tasks:
        if not isinstance(task, CachedTask):
            continue
        name = name_of(task)
        names.add(name)
        if recorded.get(name, {}).get("hash") != task.task_hash():
            changed.append(name)
        elif not task.is_done():
            missing.append(name)
    changed += [name for name in recorded if name not in names]
    return changed, missing


def report(record: dict[str, Any], root: luigi.Task) -> list[str]:
    cv = record["cv"]
    git = record["git"]
    code = (git.get("commit") or "no commit")[:12] + (" + patch" if git.get("dirty") else "")
    same_environment, environment_line = environment.compare(record.get("environment"), environment.current())
    lines = [
        f"Run {record['run_id']}: CV {cv['metric']} {cv['score']:.5f}, code {code}",
        "To re-create it (nothing is checked out for you):",
        *(f"  {line}" for line in commands(record, install=not same_environment)),
        environment_line,
    ]
    changed, missing = differences(record, root)
    if not changed and not missing:
        lines.append(
            "The current code, data and config give every task the hash this run recorded: "
            f"`{make_command(record)}` reuses its cached results and runs nothing."
        )
    elif not changed:
        lines.append(f"The current tree matches this run, but these results are no longer cached: {', '.join(missing)}")
    else:
        lines.append(f"The current tree differs from this run in: {', '.join(changed)} (run the commands above)")
    return lines
