"""Every task of the pipeline, for `luigi --module <package>.tasks <Task>` and for notebooks.

(Fetch or Download ->) RawData -> Ingest -> Split -> features (FEATURES) -> Train (one per model) -> Blend
-> Submission (-> Push)
"""

from .data.download import Download
from .data.fetch import Fetch
from .data.ingest import Ingest
from .data.raw import RawData
from .data.split import Split
from .features import FEATURES, Features
from .model.blend import Blend
from .model.submission import Submission
from .model.train import Models, Train
from .model.tune import Tune
from .push import Push

__all__ = [
    "FEATURES",
    "Blend",
    "Download",
    "Features",
    "Fetch",
    "Ingest",
    "Models",
    "Push",
    "RawData",
    "Split",
    "Submission",
    "Train",
    "Tune",
]
