"""Feature: the base class of every feature task. A feature author writes one function."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from ..config import checked_competition
from ..errors import DataError
from ..storage.cache import CachedTask
from .ingest import Ingest
from .split import Split

if TYPE_CHECKING:
    import pandas as pd


class Feature(CachedTask):
    """A group of feature columns for the train and test rows, keyed by id.

    Override `make(df)` for features of the rows themselves: df holds the train rows then the
    test rows, with only the columns `columns()` names. Features that learn from the target
    set `uses_target = True` and override `make_train_test(train, test)`: there train also has
    the target and the `fold` of each row, so out-of-fold statistics can avoid leakage.
    Features whose make(df) uses only each row's own values set `row_wise = True`: they then
    run on one batch of rows at a time (see features/numeric.py), which is how a table larger than
    memory is processed.
    """

    uses_target: ClassVar[bool] = False
    # True when make(df) uses only each row's own values: it then runs on a batch of Ingest's rows
    # at a time, so a feature of a table larger than memory never holds it whole.
    row_wise: ClassVar[bool] = False

    def requires(self) -> dict[str, CachedTask]:
        return {"data": Ingest(), "split": Split()}

    def settings(self) -> dict[str, Any]:
        cfg = checked_competition()
        return {"id_column": cfg.id_column, "target_column": cfg.target_column}

    def columns(self) -> list[str] | None:
        """The raw columns this feature reads (the id is always read); None reads them all."""
        return None

    def make(self, df: pd.DataFrame) -> pd.DataFrame:
        """New feature columns for the rows of df, with df's index."""
        raise TypeError(f"{self.task_family} must define make(df) or make_train_test(train, test)")

    def make_train_test(self, train: pd.DataFrame, test: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        import pandas as pd

        both = pd.concat([train, test], ignore_index=True)
        made = self.make(both)
        return made.iloc[: len(train)].reset_index(drop=True), made.iloc[len(train) :].reset_index(drop=True)

    def build(self) -> dict[str, pd.DataFrame | Iterator[pd.DataFrame]]:
        cfg = checked_competition()
        data = Ingest()
        columns = self.columns()
        if columns is not None:
            known = data.manifest()["facts"]["kinds"]
            unknown = [c for c in columns if c not in known]
            if unknown:
                raise DataError(f"{self.task_family} reads {unknown}, which train.csv and test.csv do not have")
            columns = [cfg.id_column, *columns]
        if self.row_wise and not self.uses_target:
            return {part: self._by_row_group(part, columns, cfg.id_column) for part in ("train", "test")}
        target = [cfg.target_column] if self.uses_target else []
        train = data.load("train", columns=None if columns is None else [*columns, *target])
        if self.uses_target:
            train["fold"] = Split().load("folds", columns=["fold"])["fold"].to_numpy()
        else:
            train = train.drop(columns=[cfg.target_column], errors="ignore")
        test = data.load("test", columns=columns)

        made_train, made_test = self.make_train_test(train, test)
        for made, rows, part in ((made_train, train, "train"), (made_test, test, "test")):
            if len(made) != len(rows):
                raise DataError(f"{self.task_family} returned {len(made)} {part} rows for {len(rows)}")
        if list(made_train.columns) != list(made_test.columns):
            raise DataError(f"{self.task_family} returned different train and test columns")
        self.facts["columns"] = [str(c) for c in made_train.columns]
        return {
            "train": _keyed(made_train, train[cfg.id_column], cfg.id_column),
            "test": _keyed(made_test, test[cfg.id_column], cfg.id_column),
        }

    def _by_row_group(self, part: str, columns: list[str] | None, id_column: str) -> Iterator[pd.DataFrame]:
        """make() applied to one batch of Ingest's rows at a time, keyed by id."""
        target = checked_competition().target_column
        for rows in Ingest().batches(part, columns):
            made = self.make(rows.drop(columns=[target], errors="ignore"))
            if len(made) != len(rows):
                raise DataError(f"{self.task_family} returned {len(made)} {part} rows for {len(rows)}")
            names = [str(c) for c in made.columns]
            if self.facts.setdefault("columns", names) != names:
                raise DataError(f"{self.task_family} returned different columns for different rows")
            yield _keyed(made, rows[id_column], id_column)


def _keyed(made: pd.DataFrame, ids: pd.Series, id_column: str) -> pd.DataFrame:
    made = made.reset_index(drop=True)
    made.insert(0, id_column, ids.to_numpy())
    return made
