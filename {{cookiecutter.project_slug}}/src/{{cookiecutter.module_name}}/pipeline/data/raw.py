"""The competition's raw files in data/raw, in Kaggle's layout."""

from __future__ import annotations

import luigi

from ..config import RAW_FILES, checked_competition, kaggle, raw_dir, raw_file, s3, shown
from ..errors import DataError
from .download import Download
from .fetch import Fetch


class RawData(luigi.Task):
    """data/raw/{train,test,sample_submission}.csv (or .csv.gz): fetched from S3 when luigi.cfg
    [s3] bucket is set, else the files put there, else (none there) downloaded from Kaggle when
    [kaggle] competition is set, else the demo competition."""

    def requires(self) -> list[luigi.Task]:
        if s3().bucket:
            return [Fetch()]
        if kaggle().competition.strip() and not any(raw_file(name).exists() for name in RAW_FILES):
            return [Download()]
        return []

    def complete(self) -> bool:
        return super().complete() and all(task.complete() for task in self.requires())

    def output(self) -> dict[str, luigi.LocalTarget]:
        return {name: luigi.LocalTarget(raw_file(name)) for name in RAW_FILES}

    def run(self) -> None:
        folder = raw_dir()
        present = [name for name in RAW_FILES if raw_file(name).exists()]
        missing = [name for name in RAW_FILES if name not in present]
        if not missing:  # Fetch has just written them
            return
        if s3().bucket:
            raise DataError(
                f"{shown(folder)}: no {', '.join(missing)} after fetching luigi.cfg [s3] files {s3().files} "
                f"from s3://{s3().bucket}/{s3().prefix}; list the files (or archives) that hold them"
            )
        if present:
            source = (
                f"Kaggle competition {kaggle().competition}'s files" if kaggle().competition.strip() else "demo data"
            )
            raise DataError(
                f"{shown(folder)}: has {', '.join(present)} but not {', '.join(missing)}; "
                f"add the missing files, or empty the folder to get the {source}"
            )
        from .demo import write_demo

        cfg = checked_competition()
        write_demo(folder, cfg.problem_type, cfg.id_column, cfg.target_column, cfg.seed)
