"""luigi.cfg sections as luigi.Config classes: the one place task defaults come from.

A section maps to the class of the same name, so `[competition] seed = 42` is
`competition().seed`, and `--competition-seed 7` on the command line overrides it for one run.
"""

from pathlib import Path

import luigi

from .. import PROJECT_ROOT
from .errors import ConfigError

PROBLEM_TYPES = ("binary", "multiclass", "regression")
RAW_FILES = ("train.csv", "test.csv", "sample_submission.csv")  # in data/raw, where Ingest looks


class competition(luigi.Config):  # noqa: N801 - the class name is the luigi.cfg section name
    """What is predicted, from which columns, and how it is scored."""

    problem_type = luigi.ChoiceParameter(choices=PROBLEM_TYPES, default="binary")
    id_column = luigi.Parameter(default="id")
    target_column = luigi.Parameter(default="target")
    metric = luigi.Parameter(default="")
    seed = luigi.IntParameter(default=42)
    n_folds = luigi.IntParameter(default=5)
    # stratified | kfold | group | stratified_group | time (empty: stratified, or kfold for regression)
    folds = luigi.Parameter(default="")
    group_column = luigi.Parameter(default="")
    time_column = luigi.Parameter(default="")
    time_gap = luigi.FloatParameter(default=0.0)  # in the time column's units (days for dates)


class paths(luigi.Config):  # noqa: N801
    """Where files live; relative paths are relative to the project root."""

    raw = luigi.Parameter(default="data/raw")
    cache = luigi.Parameter(default="data/cache")
    cache_mirror = luigi.Parameter(default="")  # with the cache on S3 (empty: data/cache-s3/<bucket>/<prefix>)
    submissions = luigi.Parameter(default="submissions")
    runs = luigi.Parameter(default="runs")
    reports = luigi.Parameter(default="reports")


class train(luigi.Config):  # noqa: N801
    """Which model Train fits by default, its seeds, and hgb's parameters (its older home:
    [model.hgb] params wins when set). Other models' parameters: [model.<name>] params."""

    model = luigi.Parameter(default="hgb")
    models = luigi.ListParameter(default=[])  # more models `make all` trains besides `model`
    seeds = luigi.ListParameter(default=[])  # empty: [competition] seed alone
    model_params = luigi.DictParameter(default={})
    importance_repeats = luigi.IntParameter(default=1)
    # Fits of fewer cells (fitting rows x feature columns) use one thread: see threads.for_fit.
    small_fit_cells = luigi.IntParameter(default=1_000_000)


class submission(luigi.Config):  # noqa: N801
    """What the submission holds: `train` ([train] model's predictions) or `blend` (Blend's)."""

    source = luigi.ChoiceParameter(choices=("train", "blend"), default="train")


class blend(luigi.Config):  # noqa: N801
    """Which trained models Blend combines (empty: every model in MODELS that is installed), and how:
    `weights` (non-negative, summing to 1) or `stack` (a level-2 logistic / ridge regression)."""

    models = luigi.ListParameter(default=[])
    method = luigi.ChoiceParameter(choices=("weights", "stack"), default="weights")


class ingest(luigi.Config):  # noqa: N801
    """How raw CSVs become Parquet: read in chunks so memory does not grow with the file."""

    chunk_mb = luigi.FloatParameter(default=1.0)
    compression = luigi.ChoiceParameter(choices=("snappy", "zstd", "lz4", "gzip", "none"), default="snappy")
    dictionary_max_values = luigi.IntParameter(default=1000)
    column_types = luigi.DictParameter(default={})


class s3(luigi.Config):  # noqa: N801
    """Where the competition files are kept in S3 (empty bucket: no S3 source)."""

    bucket = luigi.Parameter(default="")
    prefix = luigi.Parameter(default="")
    files = luigi.Parameter(default='["train.csv", "test.csv", "sample_submission.csv"]')  # JSON list or names
    max_attempts = luigi.IntParameter(default=5)


class kaggle(luigi.Config):  # noqa: N801
    """The Kaggle competition behind `make download`, `make submit` and `make lb` (empty: none)."""

    competition = luigi.Parameter(default="")
    max_attempts = luigi.IntParameter(default=3)


def project_path(value: str) -> Path:
    """A configured path, resolved against the project root unless absolute."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def shown(path: Path) -> str:
    """A path for messages: relative to the project root when inside it."""
    try:
        return str(Path(path).relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def raw_dir() -> Path:
    return project_path(paths().raw)


def raw_file(name: str) -> Path:
    """data/raw/<name>, or <name>.gz when only the compressed file is there."""
    path = raw_dir() / name
    compressed = path.with_name(f"{name}.gz")
    return compressed if not path.exists() and compressed.exists() else path


def cache_url() -> str | None:
    """The cache's S3 URL when `[paths] cache` is one (`s3://bucket/prefix`), else None."""
    value = paths().cache.strip()
    return value.rstrip("/") if value.startswith("s3://") else None


def cache_dir() -> Path:
    """The local cache folder; with a cache on S3, this machine's mirror of it
    (`data/cache-s3/<bucket>/<prefix>`), which also holds what stays local (running tasks, file
    hashes keyed by size and mtime)."""
    url = cache_url()
    if url is not None:
        mirror = paths().cache_mirror
        return project_path(mirror) if mirror else project_path("data/cache-s3") / url.removeprefix("s3://")
    return project_path(paths().cache)


def submissions_dir() -> Path:
    return project_path(paths().submissions)


def runs_dir() -> Path:
    return project_path(paths().runs)


def reports_dir() -> Path:
    return project_path(paths().reports)


def checked_competition() -> competition:
    """The [competition] section, with the ranges luigi's parameter types cannot express."""
    cfg = competition()
    if cfg.n_folds < 2:
        raise ConfigError(f"luigi.cfg [competition] n_folds = {cfg.n_folds}: need 2 or more")
    if cfg.seed < 0:
        raise ConfigError(f"luigi.cfg [competition] seed = {cfg.seed}: need a non-negative integer")
    if not cfg.id_column or not cfg.target_column or cfg.id_column == cfg.target_column:
        raise ConfigError(
            "luigi.cfg [competition] id_column and target_column must be set and differ "
            f"(got {cfg.id_column!r} and {cfg.target_column!r})"
        )
    return cfg
