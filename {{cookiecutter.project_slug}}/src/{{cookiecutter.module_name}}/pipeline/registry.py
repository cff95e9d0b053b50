"""Your registries, read in this one place: the only imports from the machinery into your rooms
(features/ and models/)."""

from __future__ import annotations

import luigi

from ..features import FEATURES
from ..models import MODELS
from .errors import ConfigError
from .training.model import Model

__all__ = ["FEATURES", "MODELS", "Features", "model_named"]


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
