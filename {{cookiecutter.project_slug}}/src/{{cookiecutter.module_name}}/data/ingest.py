"""Ingest: check the raw CSV files against the data contract and store them as typed Parquet."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cache import CachedTask
from ..config import checked_competition, raw_dir, shown
from ..errors import DataError
from .raw import RAW_FILES, RawData

if TYPE_CHECKING:
    import pandas as pd

_DATE_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?")
_EXAMPLES = 3


def _examples(values) -> str:
    values = list(values)
    listed = ", ".join(str(v) for v in values[:_EXAMPLES])
    return listed + (", ..." if len(values) > _EXAMPLES else "")


def read_csv(path: Path, text_columns: list[str] | None = None) -> pd.DataFrame:
    """Read a raw CSV (text_columns as text, as written); an empty or header-only file is a
    DataError naming the file."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, low_memory=False, dtype=dict.fromkeys(text_columns or [], "str"))
    except FileNotFoundError:
        raise DataError(f"{shown(path)}: file not found; run `make data` or copy the file there") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{shown(path)}: file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DataError(f"{shown(path)}: not a readable CSV file ({error})".replace("\n", " ")) from None
    if frame.empty:
        raise DataError(f"{shown(path)}: has a header but no rows")
    return frame


def text_in_either(train: pd.DataFrame, test: pd.DataFrame) -> list[str]:
    """Columns that pandas read as text in one file and not in the other (such as codes that
    look numeric in train but hold letters in test)."""
    import pandas as pd

    return [
        c
        for c in test.columns
        if c in train.columns
        and pd.api.types.is_string_dtype(train[c]) != pd.api.types.is_string_dtype(test[c])
        and train[c].notna().any()
        and test[c].notna().any()
    ]


def require_columns(frame: pd.DataFrame, path: Path, columns: dict[str, str]) -> None:
    """columns maps a column name to the luigi.cfg key that names it."""
    for column, key in columns.items():
        if column not in frame.columns:
            raise DataError(
                f"{shown(path)}: no column {column!r} (has {_examples(frame.columns)}); "
                f"set {key} in luigi.cfg [competition]"
            )


def require_unique_ids(frame: pd.DataFrame, path: Path, id_column: str) -> None:
    ids = frame[id_column]
    if ids.isna().any():
        raise DataError(f"{shown(path)}: {id_column!r} has {int(ids.isna().sum())} missing values")
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        raise DataError(f"{shown(path)}: {id_column!r} has repeated ids ({_examples(duplicated.unique())})")


def parse_dates(train: pd.DataFrame, test: pd.DataFrame) -> list[str]:
    """Convert string columns that hold ISO dates in both files to datetimes; return their names."""
    import pandas as pd

    converted = []
    for column in train.columns:
        if column not in test.columns or not pd.api.types.is_string_dtype(train[column]):
            continue
        sample = train[column].dropna().head(100)
        if sample.empty or not sample.map(lambda v: bool(_DATE_LIKE.match(str(v)))).all():
            continue
        parsed = [pd.to_datetime(f[column], format="ISO8601", errors="coerce") for f in (train, test)]
        if all((p.notna() == f[column].notna()).all() for p, f in zip(parsed, (train, test))):
            train[column], test[column] = parsed
            converted.append(column)
    return converted


def column_kind(series: pd.Series) -> str:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "date"
    return "category"


class Ingest(CachedTask):
    """Validated, typed copies of train, test and sample_submission, read once from CSV.

    Its manifest records each column's kind (numeric, category, date), so features choose
    their columns without opening the data.
    """

    def requires(self) -> RawData:
        return RawData()

    def settings(self) -> dict[str, Any]:
        cfg = checked_competition()
        return {"id_column": cfg.id_column, "target_column": cfg.target_column}

    def inputs(self) -> dict[str, Path]:
        return {name: raw_dir() / name for name in RAW_FILES}

    def build(self) -> dict[str, pd.DataFrame]:
        cfg = checked_competition()
        id_col, target = cfg.id_column, cfg.target_column
        paths = self.inputs()
        train_path, test_path, sample_path = (paths[name] for name in RAW_FILES)
        train, test, sample = (read_csv(path) for path in (train_path, test_path, sample_path))
        mixed = text_in_either(train, test)
        if mixed:  # one kind for both files: text, read again so that codes such as 007 keep their zeros
            train, test = read_csv(train_path, mixed), read_csv(test_path, mixed)

        require_columns(train, train_path, {id_col: "id_column", target: "target_column"})
        require_columns(test, test_path, {id_col: "id_column"})
        require_columns(sample, sample_path, {id_col: "id_column"})
        for frame, path in ((train, train_path), (test, test_path), (sample, sample_path)):
            require_unique_ids(frame, path, id_col)
        if train[target].isna().any():
            raise DataError(f"{shown(train_path)}: target {target!r} has {int(train[target].isna().sum())} missing values")

        test = test.drop(columns=[target], errors="ignore")
        expected = [c for c in train.columns if c != target]
        if set(test.columns) != set(expected):
            only_train = [c for c in expected if c not in test.columns]
            only_test = [c for c in test.columns if c not in expected]
            raise DataError(
                f"{shown(test_path)}: columns differ from {train_path.name} "
                f"(only in train: {_examples(only_train) or '-'}; only in test: {_examples(only_test) or '-'})"
            )
        test = test[expected]
        if len(sample.columns) < 2:
            raise DataError(f"{shown(sample_path)}: has no prediction column besides {id_col!r}")

        test_ids, sample_ids = set(test[id_col].astype(str)), set(sample[id_col].astype(str))
        if test_ids != sample_ids:
            raise DataError(
                f"{shown(sample_path)}: ids do not match {test_path.name} "
                f"({len(sample_ids - test_ids)} only in the sample, e.g. {_examples(sorted(sample_ids - test_ids))}; "
                f"{len(test_ids - sample_ids)} only in test, e.g. {_examples(sorted(test_ids - sample_ids))})"
            )

        dates = parse_dates(train, test)
        kinds = {c: column_kind(train[c]) for c in expected if c != id_col}
        self.facts.update(
            rows={"train": len(train), "test": len(test)},
            kinds=kinds,
            date_columns=dates,
            text_in_either_file=mixed,
            prediction_columns=[c for c in sample.columns if c != id_col],
        )
        return {"train": train, "test": test, "sample_submission": sample}

    def columns_of(self, kind: str) -> list[str]:
        """Feature columns of one kind ('numeric', 'category', 'date'), from the manifest."""
        return [c for c, k in self.manifest()["facts"]["kinds"].items() if k == kind]
