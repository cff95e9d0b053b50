"""The competition's raw files in data/raw, in Kaggle's layout."""

from __future__ import annotations

from pathlib import Path

import luigi

from ..config import checked_competition, raw_dir, s3, shown
from ..errors import ConfigError, DataError

RAW_FILES = ("train.csv", "test.csv", "sample_submission.csv")


def raw_file(name: str) -> Path:
    """data/raw/<name>, or <name>.gz when only the compressed file is there."""
    path = raw_dir() / name
    compressed = path.with_name(f"{name}.gz")
    return compressed if not path.exists() and compressed.exists() else path


class RawData(luigi.Task):
    """data/raw/{train,test,sample_submission}.csv (or .csv.gz); when none is there, writes the demo."""

    def output(self) -> dict[str, luigi.LocalTarget]:
        return {name: luigi.LocalTarget(raw_file(name)) for name in RAW_FILES}

    def run(self) -> None:
        folder = raw_dir()
        present = [name for name in RAW_FILES if raw_file(name).exists()]
        if present:
            missing = [name for name in RAW_FILES if name not in present]
            raise DataError(
                f"{shown(folder)}: has {', '.join(present)} but not {', '.join(missing)}; "
                "add the missing files, or empty the folder to get the demo data"
            )
        if s3().bucket:
            raise ConfigError(
                f"{shown(folder)} is empty and luigi.cfg [s3] bucket = {s3().bucket}: fetching from S3 is not built yet; "
                "copy train.csv, test.csv and sample_submission.csv there, or empty [s3] bucket for the demo"
            )
        from .demo import write_demo

        cfg = checked_competition()
        write_demo(folder, cfg.problem_type, cfg.id_column, cfg.target_column, cfg.seed)
