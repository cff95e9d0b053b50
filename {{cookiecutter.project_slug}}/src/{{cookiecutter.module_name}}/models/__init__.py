"""Your models. MODELS lists the models `make models` trains and `make train MODEL=name` picks from:
add yours here (copy stub.py)."""

from __future__ import annotations

from ..pipeline import Model
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
