"""Stage 2, the features. FEATURES lists the feature tasks Train uses: add yours here."""

import luigi

from .categorical import CategoryCodes
from .dates import DateParts
from .numeric import NumericColumns
from .target_encoding import TargetEncoding

FEATURES = [
    NumericColumns,
    CategoryCodes,
    DateParts,
    TargetEncoding,
]


class Features(luigi.WrapperTask):
    """Every registered feature; `make features WORKERS=4` builds them in parallel."""

    def requires(self) -> list[luigi.Task]:
        return [feature() for feature in FEATURES]
