"""Every task of the pipeline, for `luigi --module <package>.tasks <Task>` and for notebooks.

(Fetch or Download ->) RawData -> Ingest -> Split -> features (FEATURES) -> Train -> Submission (-> Push)
"""

from .data.download import Download
from .data.fetch import Fetch
from .data.ingest import Ingest
from .data.raw import RawData
from .data.split import Split
from .features import FEATURES, Features
from .model.submission import Submission
from .model.train import Train
from .push import Push

__all__ = ["FEATURES", "Download", "Features", "Fetch", "Ingest", "Push", "RawData", "Split", "Submission", "Train"]
