"""The models. MODELS lists the models `make models` trains and `make train MODEL=name` picks from:
add yours here (copy stub.py)."""

from __future__ import annotations

from ..errors import ConfigError
from .base import Model
from .hgb import HGB
from .lgbm import LGBM
from .linear import Linear
from .xgb import XGB

MODELS: list[type[Model]] = [
    HGB,
    Linear,
    LGBM,
    XGB,
]


def model_named(name: str) -> Model:
    """The registered model called `name`; a name not in MODELS is one ERROR line."""
    for cls in MODELS:
        if cls.name == name:
            return cls()
    known = ", ".join(cls.name for cls in MODELS)
    raise ConfigError(f"no model named {name!r}: MODELS has {known}")
