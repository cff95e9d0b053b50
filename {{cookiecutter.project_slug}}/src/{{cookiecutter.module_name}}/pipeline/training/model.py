"""What a registered model is: a name, how to build its estimator, and where its parameters live.

A model is small on purpose: Train owns the folds, the feature matrix, seeds and caching; a model
only turns its luigi.cfg parameters into a scikit-learn-style estimator (fit, predict,
predict_proba) that takes the feature matrix as it comes: float64 numbers with NaN for missing
values and pandas categoricals for categories.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import luigi.configuration

from ..errors import ConfigError


class Model(ABC):
    """Base of every registered model. Set `name` (used in `make train MODEL=name` and in the
    luigi.cfg section `[model.<name>]`) and write `estimator()`."""

    name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}  # parameters used when luigi.cfg gives none

    def params(self) -> dict[str, Any]:
        """luigi.cfg `[model.<name>] params` (JSON), else the model's defaults: part of Train's hash."""
        section = f"model.{self.name}"
        text = luigi.configuration.get_config().get(section, "params", None)
        if text is None:
            return dict(self.defaults)
        try:
            params = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(f"luigi.cfg [{section}] params is not JSON: {error.msg}") from None
        if not isinstance(params, dict):
            raise ConfigError(f"luigi.cfg [{section}] params must be a JSON object of keyword arguments")
        return params

    @abstractmethod
    def estimator(self, problem_type: str, params: dict[str, Any], seed: int, threads: int):
        """An unfitted estimator for `problem_type` (binary, multiclass, regression), seeded with
        `seed`, using at most `threads` threads."""

    def search(self, trial) -> dict[str, Any]:
        """The parameters `make tune` tries: an Optuna trial's suggestions, laid over `params()`.
        The base suggests nothing; a model that can be tuned says what to try."""
        return {}
