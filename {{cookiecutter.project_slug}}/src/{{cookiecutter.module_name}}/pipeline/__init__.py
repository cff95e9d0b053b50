"""The template's machinery: `cruft update` changes this folder, so keep your code outside it.

Your feature and model files import from here and nowhere else in it:
`from ..pipeline import Feature, Ingest, checked_competition` (features/),
`from ..pipeline import Model, imported` (models/). The stages are folders: data/ (raw files ->
Ingest -> Split, and the Feature base), training/ (Train, Blend, Tune, Submission), runs/ (run
records and their tools), storage/ (the cache), services/ (S3, Kaggle, luigid), resources/ (cores,
memory).
Importing this costs what Luigi costs: pandas and scikit-learn load only when a task runs.
"""

from . import config
from .config import checked_competition
from .data.feature import Feature
from .data.ingest import Ingest
from .errors import ConfigError, DataError, PipelineError, imported
from .training.model import Model

__all__ = [
    "ConfigError",
    "DataError",
    "Feature",
    "Ingest",
    "Model",
    "PipelineError",
    "checked_competition",
    "config",
    "imported",
]
