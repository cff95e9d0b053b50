"""Every task of the pipeline, for `luigi --module <package>.tasks <Task>` and for notebooks.

(Fetch or Download ->) RawData -> Ingest -> Split -> features (FEATURES) -> Train (one per model) -> Blend
-> Submission (-> Push)
"""

from .data.download import Download
from .data.fetch import Fetch
from .data.ingest import Ingest
from .data.raw import RawData
from .data.split import Split
from .registry import FEATURES, Features
from .runs.push import Push
from .training.blend import Blend
from .training.submission import Submission
from .training.train import Models, Train
from .training.tune import Tune

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
