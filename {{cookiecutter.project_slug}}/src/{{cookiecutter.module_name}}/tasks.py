"""Every task of the pipeline, for `luigi --module <package>.tasks <Task>` and for notebooks.

RawData -> Ingest -> Split -> features (FEATURES) -> Train -> Submission
"""

from .data.ingest import Ingest
from .data.raw import RawData
from .data.split import Split
from .features import FEATURES, Features
from .model.submission import Submission
from .model.train import Train

__all__ = ["FEATURES", "Features", "Ingest", "RawData", "Split", "Submission", "Train"]
