"""The competition's raw files in data/raw, in Kaggle's layout: every *.csv, *.csv.gz and *.parquet
file a table named by its stem."""

from __future__ import annotations

import luigi

from ..config import (
    checked_competition,
    kaggle,
    key_columns,
    raw_dir,
    raw_tables,
    s3,
    shown,
    table_file,
    table_names,
    target_columns,
)
from ..errors import DataError
from .download import Download
from .fetch import Fetch


class RawData(luigi.Task):
    """The tables that hold the rows ([competition] train, test, sample_submission: by default
    data/raw/{train,test,sample_submission}.csv), and whatever other tables data/raw holds:
    fetched from S3 when luigi.cfg [s3] bucket is set, else the files put there, else (none there)
    downloaded from Kaggle when [kaggle] competition is set, else the demo competition."""

    def requires(self) -> list[luigi.Task]:
        if s3().bucket:
            return [Fetch()]
        if kaggle().competition.strip() and not any(table_file(name).exists() for name in table_names().values()):
            return [Download()]
        return []

    def complete(self) -> bool:
        return super().complete() and all(task.complete() for task in self.requires())

    def output(self) -> dict[str, luigi.LocalTarget]:
        return {role: luigi.LocalTarget(table_file(name)) for role, name in table_names().items()}

    def run(self) -> None:
        folder = raw_dir()
        names = table_names()
        missing = sorted({name for name in names.values() if not table_file(name).exists()})
        if not missing:  # Fetch or Download has just written them
            return
        there = raw_tables()
        if s3().bucket:
            raise DataError(
                f"{shown(folder)}: no table {', '.join(missing)} after fetching luigi.cfg [s3] files {s3().files} "
                f"from s3://{s3().bucket}/{s3().prefix}; list the files (or archives) that hold them"
            )
        if there:
            source = (
                f"Kaggle competition {kaggle().competition}'s files" if kaggle().competition.strip() else "demo data"
            )
            raise DataError(
                f"{shown(folder)}: no table {', '.join(missing)} (a .csv, .csv.gz or .parquet file; tables there: "
                f"{', '.join(there)}); set luigi.cfg [competition] train, test and sample_submission to the "
                f"tables that hold the rows, add the missing files, or empty the folder to get the {source}"
            )
        from .demo import write_demo

        cfg = checked_competition()
        targets = target_columns()
        if len(targets) > 1:
            raise DataError(
                f"{shown(folder)} is empty and the demo competition has one target, not {len(targets)} "
                f"({cfg.target_column}): put your competition's files there"
            )
        write_demo(folder, cfg.problem_type, key_columns(), targets[0], cfg.seed, names)
