"""Stage 2, your features. FEATURES lists the feature tasks Train uses: add yours here (copy stub.py)."""

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
