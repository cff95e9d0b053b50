"""The template's machinery: `cruft update` changes this folder, so keep your code outside it.

Your feature and model files import from here and nowhere else in it:
`from ..pipeline import Feature, Ingest, checked_competition, target_columns` (features/),
`from ..pipeline import Model, imported` (models/), `from ..pipeline import BUILT_IN_METRICS, Metric`
(metrics/). The stages are folders: data/ (raw files ->
Ingest -> Split, and the Feature base), training/ (Train, Blend, Tune, Submission), runs/ (run
records and their tools), storage/ (the cache), services/ (S3, Kaggle, luigid), resources/ (cores,
memory).
Importing this costs what Luigi costs: pandas and scikit-learn load only when a task runs.
"""

from . import config
from .config import checked_competition, target_columns
from .data.feature import Feature
from .data.ingest import Ingest
from .errors import ConfigError, DataError, PipelineError, imported
from .training.metrics import BUILT_IN_METRICS, Metric
from .training.model import Model

__all__ = [
    "BUILT_IN_METRICS",
    "ConfigError",
    "DataError",
    "Feature",
    "Ingest",
    "Metric",
    "Model",
    "PipelineError",
    "checked_competition",
    "config",
    "imported",
    "target_columns",
]
