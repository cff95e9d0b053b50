"""luigi.cfg sections as luigi.Config classes: the one place task defaults come from.

A section maps to the class of the same name, so `[competition] seed = 42` is
`competition().seed`, and `--competition-seed 7` on the command line overrides it for one run.
"""

import contextlib
import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import luigi

from .. import PROJECT_ROOT
from .errors import ConfigError
from .storage.parquet import CODECS

PROBLEM_TYPES = ("binary", "multiclass", "regression")
# A file of data/raw with one of these endings is a table named by the rest of its name
# (promoted_content.csv -> promoted_content); when a name has several, the first ending wins.
TABLE_ENDINGS = (".csv", ".csv.gz", ".parquet")
ROLES = ("train", "test", "sample_submission")  # the tables that hold the rows, by [competition] key
_resolved: dict[Any, list] | None = None  # while parameters_fixed() is open: parameters and their values


@contextlib.contextmanager
def parameters_fixed() -> Iterator[None]:
    """Within the block (a whole run: luigi.cfg and the command line cannot change during it), each
    task's and section's parameter values are resolved once. Luigi resolves them again on every
    `Train()` or `competition()`, looking each parameter up in luigi.cfg (0.3 ms to 0.9 ms a call);
    a run makes thousands of such calls, a quarter of a second in Train's process alone."""
    global _resolved
    outer, _resolved = _resolved, {} if _resolved is None else _resolved
    try:
        yield
    finally:
        _resolved = outer


class ResolvedOnce:
    """A luigi task or config section whose parameters (found by Luigi in dir() of the class on every
    call) and their values are memoized within parameters_fixed()."""

    @classmethod
    def get_params(cls) -> list:
        return _resolved_once(cls, super().get_params)  # type: ignore[misc]

    @classmethod
    def get_param_values(cls, params: list, args: tuple, kwargs: dict[str, Any]) -> list:
        resolve = functools.partial(super().get_param_values, params, args, kwargs)  # type: ignore[misc]
        return _resolved_once((cls, args, tuple(sorted(kwargs.items()))), resolve)


def _resolved_once(key: Any, resolve: Callable[[], list]) -> list:
    """resolve(), or within parameters_fixed() its value for `key` once; a key that cannot be hashed
    (an argument of a list) is resolved each time, as Luigi does."""
    if _resolved is None:
        return resolve()
    try:
        values = _resolved.get(key)
    except TypeError:
        return resolve()
    if values is None:
        values = _resolved[key] = resolve()
    return list(values)


class competition(ResolvedOnce, luigi.Config):  # noqa: N801 - the class name is the luigi.cfg section name
    """What is predicted, from which columns, and how it is scored."""

    problem_type = luigi.ChoiceParameter(choices=PROBLEM_TYPES, default="binary")
    # The row key: one column, or several separated by spaces (a JSON list for names with spaces).
    id_column = luigi.Parameter(default="id")
    # Names of tables in data/raw: the rows to learn from, the rows to predict (may be the sample
    # itself, when a competition lists the test rows only there) and the submission's form.
    train = luigi.Parameter(default="train")
    test = luigi.Parameter(default="test")
    sample_submission = luigi.Parameter(default="sample_submission")
    # What is predicted: one column, or several separated by spaces (one model each, scored by the
    # metric's mean over them).
    target_column = luigi.Parameter(default="target")
    metric = luigi.Parameter(default="")  # a name in metrics/__init__.py METRICS (empty: the problem type's)
    seed = luigi.IntParameter(default=42)
    n_folds = luigi.IntParameter(default=5)
    # stratified | kfold | group | stratified_group | time (empty: stratified, or kfold for regression)
    folds = luigi.Parameter(default="")
    group_column = luigi.Parameter(default="")  # a grouped metric's groups; set, folds keep groups whole
    time_column = luigi.Parameter(default="")
    time_gap = luigi.FloatParameter(default=0.0)  # in the time column's units (days for dates)


class paths(ResolvedOnce, luigi.Config):  # noqa: N801
    """Where files live; relative paths are relative to the project root."""

    raw = luigi.Parameter(default="data/raw")
    cache = luigi.Parameter(default="data/cache")
    cache_mirror = luigi.Parameter(default="")  # with the cache on S3 (empty: data/cache-s3/<bucket>/<prefix>)
    submissions = luigi.Parameter(default="submissions")
    runs = luigi.Parameter(default="runs")
    reports = luigi.Parameter(default="reports")


class train(ResolvedOnce, luigi.Config):  # noqa: N801
    """Which model Train fits by default, its seeds, and hgb's parameters (its older home:
    [model.hgb] params wins when set). Other models' parameters: [model.<name>] params."""

    model = luigi.Parameter(default="hgb")
    models = luigi.ListParameter(default=[])  # more models `make all` trains besides `model`
    seeds = luigi.ListParameter(default=[])  # empty: [competition] seed alone
    model_params = luigi.DictParameter(default={})
    importance_repeats = luigi.IntParameter(default=1)
    # Fits of fewer cells (fitting rows x feature columns) use one thread: see threads.for_fit.
    small_fit_cells = luigi.IntParameter(default=1_000_000)


class submission(ResolvedOnce, luigi.Config):  # noqa: N801
    """What the submission holds: `train` ([train] model's predictions) or `blend` (Blend's); and the
    file's form: `rows` (the sample's rows, predictions filled in), `ranked` (per key of the sample,
    the test rows' values listed best first, at most top_k; empty: all) or a function of FORMATS."""

    source = luigi.ChoiceParameter(choices=("train", "blend"), default="train")
    format = luigi.Parameter(default="rows")
    top_k = luigi.Parameter(default="")


class blend(ResolvedOnce, luigi.Config):  # noqa: N801
    """Which trained models Blend combines (empty: every model in MODELS that is installed), and how:
    `weights` (non-negative, summing to 1) or `stack` (a level-2 logistic / ridge regression)."""

    models = luigi.ListParameter(default=[])
    method = luigi.ChoiceParameter(choices=("weights", "stack"), default="weights")


class ingest(ResolvedOnce, luigi.Config):  # noqa: N801
    """How raw CSVs become Parquet: read in chunks so memory does not grow with the file."""

    chunk_mb = luigi.FloatParameter(default=1.0)
    compression = luigi.ChoiceParameter(choices=CODECS, default="auto")
    dictionary_max_values = luigi.IntParameter(default=1000)
    column_types = luigi.DictParameter(default={})


class duckdb(ResolvedOnce, luigi.Config):  # noqa: N801
    """DuckDB, which runs features' SQL over the tables out of core: how much memory it may hold
    before it spills to a folder in the cache (e.g. 4GB; empty: half the machine's memory, shared
    among the tasks running at once). Its threads are the running task's share of the cores."""

    memory_limit = luigi.Parameter(default="")


class s3(ResolvedOnce, luigi.Config):  # noqa: N801
    """Where the competition files are kept in S3 (empty bucket: no S3 source)."""

    bucket = luigi.Parameter(default="")
    prefix = luigi.Parameter(default="")
    files = luigi.Parameter(default="*")  # a JSON list or names; patterns match the objects under the prefix
    max_attempts = luigi.IntParameter(default=5)


class kaggle(ResolvedOnce, luigi.Config):  # noqa: N801
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


def table_of(file_name: str) -> str | None:
    """The table a file of data/raw holds (its name less the ending), or None for other files."""
    lowered = file_name.lower()
    ending = next((end for end in TABLE_ENDINGS if lowered.endswith(end)), None)
    return file_name[: -len(ending)] if ending and len(file_name) > len(ending) else None


def raw_tables() -> dict[str, Path]:
    """Every table in data/raw by name, sorted: its *.csv, *.csv.gz and *.parquet files (hidden
    files are not tables: they are downloads in progress)."""
    folder = raw_dir()
    names = sorted(
        {table_of(p.name) for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")} - {None}
        if folder.is_dir()
        else set()
    )
    return {name: table_file(name) for name in names}


def table_file(name: str) -> Path:
    """data/raw's file of table `name` (name.csv, else name.csv.gz, else name.parquet); when there is
    none yet, the CSV's path (upstream tasks may write it)."""
    folder = raw_dir()
    for ending in TABLE_ENDINGS:
        path = folder / f"{name}{ending}"
        if path.is_file():
            return path
    return folder / f"{name}.csv"


def column_names(value: str, key: str) -> list[str]:
    """A luigi.cfg [competition] value that names columns: one name, several separated by spaces,
    or a JSON list (for names that hold spaces: ["row id"])."""
    text = value.strip()
    if text.startswith("["):
        try:
            names = json.loads(text)
        except ValueError as error:
            raise ConfigError(f"luigi.cfg [competition] {key} = {text}: not a JSON list ({error})") from None
        if not isinstance(names, list) or not all(isinstance(name, str) and name for name in names):
            raise ConfigError(f"luigi.cfg [competition] {key} = {text}: list column names as strings")
    else:
        names = text.split()
    if not names:
        raise ConfigError(f"luigi.cfg [competition] {key} is empty: name the column(s)")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"luigi.cfg [competition] {key} names {', '.join(repeated)} twice")
    return names


def key_columns() -> list[str]:
    """The columns whose values together identify a row of train, test and the sample: [competition]
    id_column, checked."""
    return column_names(checked_competition().id_column, "id_column")


def target_columns() -> list[str]:
    """The column(s) to predict: [competition] target_column, checked. Several targets are binary or
    regression ones (one model each); a multiclass target is one column."""
    cfg = checked_competition()
    targets = column_names(cfg.target_column, "target_column")
    if len(targets) > 1 and cfg.problem_type == "multiclass":
        raise ConfigError(
            f"luigi.cfg [competition] target_column = {cfg.target_column}: several targets must be binary or "
            "regression ones, not multiclass"
        )
    return targets


def submission_format() -> str:
    """[submission] format: rows, ranked, or the name of a function in FORMATS (checked there)."""
    return submission().format.strip() or "rows"


def file_keys(sample_columns: list[str]) -> list[str]:
    """The columns that identify a row of the submission file, as the sample has them: the row key for
    `rows`; for a ranked list or a function of FORMATS, the sample's first column (display_id)."""
    return key_columns() if submission_format() == "rows" else list(sample_columns[:1])


def top_k() -> int | None:
    """[submission] top_k: how many values a ranked list holds at most (empty: all)."""
    text = submission().top_k.strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"luigi.cfg [submission] top_k = {text}: use an integer >= 1, or nothing for all")
    return int(text)


def table_names() -> dict[str, str]:
    """The tables that hold the rows, by role (train, test, sample_submission): [competition]
    train, test and sample_submission, checked. test may be the sample itself."""
    cfg = competition()
    names = {role: getattr(cfg, role).strip() for role in ROLES}
    for role, name in names.items():
        if not name:
            raise ConfigError(f"luigi.cfg [competition] {role} is empty: name a table of data/raw (a file's stem)")
    if names["train"] in (names["test"], names["sample_submission"]):
        raise ConfigError(
            f"luigi.cfg [competition] train = {names['train']}: name another table for test and the sample"
        )
    return names


def sample_is_test() -> bool:
    """Whether the test rows are the sample's (AmEx: test customers are listed only there)."""
    names = table_names()
    return names["test"] == names["sample_submission"]


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
    keys = column_names(cfg.id_column, "id_column")
    if not cfg.target_column.strip() or set(column_names(cfg.target_column, "target_column")) & set(keys):
        raise ConfigError(
            "luigi.cfg [competition] id_column and target_column must be set and differ "
            f"(got {cfg.id_column!r} and {cfg.target_column!r})"
        )
    return cfg
