"""The pipeline's task graph as run records and the run commands see it: upstream first, each task
named, with the config values and command-line overrides it ran under."""

from __future__ import annotations

import luigi
from luigi.task import flatten

from .. import config


def config_sections() -> dict[str, type[luigi.Config]]:
    """luigi.cfg sections the project reads, by name: every luigi.Config class in config.py."""
    return {
        name: value
        for name, value in vars(config).items()
        if isinstance(value, type) and issubclass(value, luigi.Config) and value.__module__ == config.__name__
    }


def config_values() -> dict[str, dict[str, str]]:
    """Every value of those sections as the tasks see them (luigi.cfg plus overrides)."""
    return {name: cls().to_str_params(only_significant=True) for name, cls in sorted(config_sections().items())}


def overrides(args: list[str]) -> list[str]:
    """The config values a command line sets (`--competition-seed 7`), without the task name,
    scheduler and worker options, which change how a run goes but not what it makes."""
    prefixes = tuple(f"--{name.replace('_', '-')}-" for name in config_sections())
    kept: list[str] = []
    tokens = iter(args)
    for token in tokens:
        if not token.startswith(prefixes):
            continue
        if "=" in token:
            kept.append(token)
        else:
            kept.extend([token, next(tokens, "")])
    return kept


def needs(task: luigi.Task) -> list[luigi.Task]:
    """What a task needs done before it is: the tasks it requires, and the parts it writes itself
    (Train's folds)."""
    return [*flatten(task.requires()), *getattr(task, "parts", list)()]


def upstream_first(root: luigi.Task) -> list[luigi.Task]:
    """Every task the root needs, each once, each after the tasks it needs."""
    seen: dict[str, luigi.Task] = {}

    def visit(task: luigi.Task) -> None:
        if task.task_id in seen:
            return
        for dependency in needs(task):
            visit(dependency)
        seen[task.task_id] = task

    visit(root)
    return list(seen.values())


def name_of(task: luigi.Task) -> str:
    """A task as the pipeline's output and the run records name it: its family, then its
    parameters (`TrainFold fold=2`), those left empty unsaid (TrainFold's target_column of one target)."""
    params = task.to_str_params(only_significant=True)
    return " ".join([task.task_family, *(f"{name}={value}" for name, value in params.items() if value != "")])
