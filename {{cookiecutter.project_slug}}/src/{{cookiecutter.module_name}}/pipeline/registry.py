"""Your registries, read in this one place: the only imports from the machinery into your rooms
(features/, models/ and metrics/)."""

from __future__ import annotations

from collections.abc import Callable

import luigi

from ..features import FEATURES
from ..metrics import FORMATS, METRICS
from ..models import MODELS
from .config import checked_competition
from .errors import ConfigError
from .training.metrics import AT_K, DEFAULT_METRIC, Metric
from .training.model import Model

__all__ = ["FEATURES", "FORMATS", "METRICS", "MODELS", "Features", "format_named", "metric_named", "model_named"]
BUILT_IN_FORMATS = ("rows", "ranked")


class Features(luigi.WrapperTask):
    """Every registered feature; `make features WORKERS=4` builds them in parallel."""

    def requires(self) -> list[luigi.Task]:
        return [feature() for feature in FEATURES]


def model_named(name: str) -> Model:
    """The registered model called `name`; a name not in MODELS is one ERROR line."""
    for cls in MODELS:
        if cls.name == name:
            return cls()
    known = ", ".join(cls.name for cls in MODELS)
    raise ConfigError(f"no model named {name!r}: MODELS has {known}")


def metric_named(name: str, problem_type: str) -> Metric:
    """The metric of METRICS called `name` (map@12: the family map@K at 12) that scores this problem
    type; anything else is one ERROR line listing the ones that do."""
    base, at, k = name.partition("@")
    found = next((m for m in METRICS if m.name == name), None)
    if found is None and at and k.isdigit() and int(k) >= 1:
        found = next((m.at(int(k)) for m in METRICS if m.name == base + AT_K), None)
    if found is None or problem_type not in found.problem_types:
        allowed = ", ".join(m.name for m in METRICS if problem_type in m.problem_types)
        raise ConfigError(
            f"luigi.cfg [competition] metric = {name!r}: for {problem_type} use one of {allowed} "
            "(METRICS in metrics/__init__.py)"
        )
    return found


def scoring() -> Metric:
    """The metric luigi.cfg names (empty: the problem type's default), with the groups it needs."""
    cfg = checked_competition()
    metric = metric_named(cfg.metric.strip() or DEFAULT_METRIC[cfg.problem_type], cfg.problem_type)
    if metric.needs_groups and not cfg.group_column.strip():
        raise ConfigError(
            f"luigi.cfg [competition] metric = {metric.name} scores rows within groups: "
            "set group_column to the column that holds them (e.g. display_id)"
        )
    return metric


def format_named(name: str) -> Callable | None:
    """The function of FORMATS called `name`, or None for the built-in rows and ranked; another name is
    one ERROR line."""
    if name in BUILT_IN_FORMATS:
        return None
    found = next((f for f in FORMATS if f.__name__ == name), None)
    if found is None:
        known = ", ".join([*BUILT_IN_FORMATS, *(f.__name__ for f in FORMATS)])
        raise ConfigError(
            f"luigi.cfg [submission] format = {name!r}: use one of {known} (FORMATS in metrics/__init__.py)"
        )
    return found
