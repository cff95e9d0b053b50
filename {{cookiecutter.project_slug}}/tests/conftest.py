"""Shared helpers: the project's settings, a tiny hand-made competition, isolated pipeline runs.

Every pipeline run gets its own root in tmp_path: a copy of luigi.cfg whose [paths] point at
folders there, so no test reads or writes the project's data/ or submissions/ folders.
"""

from __future__ import annotations

import configparser
import contextlib
import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

PROJECT = Path(__file__).resolve().parents[1]
SRC = PROJECT / "src"
MODULE = "{{ cookiecutter.module_name }}"
MANIFEST = "manifest.json"
TIMEOUT = 300

if str(SRC) not in sys.path:  # `pytest` run without make: import the package from src/ as the Makefile does
    sys.path.insert(0, str(SRC))

# The tests fit on a few hundred rows, where one thread is fastest: with more, every tree's predict
# is an OpenMP region whose threads spin-wait for each other, and on a busy machine a fold of 400
# rows took 10 s instead of 1. test_threads.py removes the setting to test how threads are shared.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def read_config(path: Path = PROJECT / "luigi.cfg") -> configparser.ConfigParser:
    config = configparser.ConfigParser(interpolation=None)
    config.read(path)
    return config


@dataclass(frozen=True)
class Competition:
    """The [competition] section of the project's luigi.cfg: what the tests must be generic over."""

    problem_type: str
    id_column: str
    target_column: str
    n_folds: int
    seed: int

    @property
    def classification(self) -> bool:
        return self.problem_type != "regression"


def competition_settings() -> Competition:
    section = read_config()["competition"]
    return Competition(
        problem_type=section["problem_type"],
        id_column=section["id_column"],
        target_column=section["target_column"],
        n_folds=int(section["n_folds"]),
        seed=int(section["seed"]),
    )


COMPETITION = competition_settings()
MULTICLASS_LABELS = ["alpha", "beta", "gamma"]
# The order of the class columns in a multiclass sample_submission: deliberately not sorted.
SAMPLE_CLASS_ORDER = ["gamma", "alpha", "beta"]


@pytest.fixture(scope="session")
def competition() -> Competition:
    return COMPETITION


# --- a tiny competition -----------------------------------------------------------------------


def tiny_dataset(
    comp: Competition = COMPETITION, n_train: int = 400, n_test: int = 50, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(train, test, sample_submission) with numbers, a string category, a high-cardinality
    string column (more than 250 distinct values), an ISO date column and missing values in
    several columns; the target fits the problem type. The sample's rows are shuffled with
    respect to test, and a multiclass sample holds one column per class, not sorted."""
    rng = np.random.default_rng(seed)
    rows = n_train + n_test
    ids = rng.permutation(np.arange(1000, 1000 + rows))
    size = rng.normal(10.0, 3.0, rows).round(3)
    count = rng.integers(0, 20, rows)
    color = rng.choice(["red", "green", "blue", "yellow"], rows).astype(object)
    code = np.array([f"u{value:04d}" for value in rng.integers(0, 2000, rows)], dtype=object)
    day = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, rows), unit="D")
    frame = pd.DataFrame(
        {
            comp.id_column: ids,
            "f_size": size,
            "f_count": count,
            "f_color": color,
            "f_code": code,
            "f_date": pd.Series(day).dt.strftime("%Y-%m-%d").to_numpy(dtype=object),
        }
    )
    signal = frame["f_size"] + 3.0 * (frame["f_color"] == "red") - 0.2 * frame["f_count"]
    noisy = signal + rng.normal(0.0, 1.0, rows)
    if comp.problem_type == "binary":
        target = (noisy > noisy.median()).astype("int64")
    elif comp.problem_type == "multiclass":
        cuts = np.quantile(noisy, [1 / 3, 2 / 3])
        target = pd.Series(np.asarray(MULTICLASS_LABELS, dtype=object)[np.searchsorted(cuts, noisy)])
    else:
        target = (noisy * 1.5 + 20.0).round(4)
    for column, share in (("f_size", 0.1), ("f_color", 0.1), ("f_date", 0.05), ("f_count", 0.05)):
        frame[column] = frame[column].where(rng.random(rows) >= share)

    train = frame.iloc[:n_train].assign(**{comp.target_column: target.iloc[:n_train].to_numpy()})
    test = frame.iloc[n_train:].reset_index(drop=True)
    sample = pd.DataFrame({comp.id_column: rng.permutation(test[comp.id_column].to_numpy())})
    if comp.problem_type == "multiclass":
        for label in SAMPLE_CLASS_ORDER:
            sample[label] = round(1 / len(SAMPLE_CLASS_ORDER), 6)
    elif comp.problem_type == "binary":
        sample[comp.target_column] = 0.5
    else:
        sample[comp.target_column] = 0.0
    return train.reset_index(drop=True), test, sample


def tiny_visits(comp: Competition, train: pd.DataFrame, test: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """An auxiliary table in the shape of the demo's `visits` (which the example features read): 1 to
    5 visits per row of train and test, with a date, an amount that follows f_size, and a channel."""
    rng = np.random.default_rng(seed)
    keys = pd.concat([train[[comp.id_column]], test[[comp.id_column]]], ignore_index=True)
    size = pd.concat([train["f_size"], test["f_size"]], ignore_index=True).fillna(10.0).to_numpy()
    owner = np.repeat(np.arange(len(keys)), rng.integers(1, 6, len(keys)))
    day = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, len(owner)), unit="D")
    visits = keys.iloc[owner].reset_index(drop=True)
    visits["visit_date"] = pd.Series(day).dt.strftime("%Y-%m-%d")
    visits["amount"] = (5 * size[owner] + rng.normal(0, 3, len(owner))).round(2)
    visits["channel"] = rng.choice(["web", "store", "phone"], len(owner))
    return visits


# --- isolated pipeline runs -------------------------------------------------------------------


class Pipeline:
    """One isolated pipeline: its own luigi.cfg, raw, cache and submissions folders under root."""

    def __init__(self, root: Path, **config: dict[str, str]) -> None:
        """config: {section: {key: value}} written over the project's luigi.cfg."""
        self.root = root
        self.raw, self.cache, self.submissions = root / "raw", root / "cache", root / "submissions"
        for folder in (self.raw, self.cache, self.submissions):
            folder.mkdir(parents=True, exist_ok=True)
        cfg = read_config()
        isolated = {
            "paths": {
                "raw": str(self.raw),
                "cache": str(self.cache),
                "submissions": str(self.submissions),
                "runs": str(root / "runs"),
                "reports": str(root / "reports"),
            },
            # Luigi's lock is per command line: keep it per root, so that runs of the same task in
            # other roots (or a `make all` in the project) do not stop this one as "already running".
            "core": {"lock_pid_dir": str(root / "luigi-lock")},
        }
        # The tests' own data, unless a test configures a bucket or a Kaggle competition.
        no_source = {"s3": {"bucket": ""}, "kaggle": {"competition": ""}}
        for section, pairs in [*no_source.items(), *config.items(), *isolated.items()]:
            if not cfg.has_section(section):
                cfg.add_section(section)
            for key, value in pairs.items():
                cfg.set(section, key, str(value))
        self.config_path = root / "luigi.cfg"
        with open(self.config_path, "w") as f:
            cfg.write(f)
        self.environment: dict[str, str | None] = {}  # this pipeline's processes only; None removes a variable

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("LUIGI_CONFIG_PATH", "PYTHONPATH")}
        env = {k: v for k, v in {**env, **self.environment}.items() if v is not None}
        return {**env, "LUIGI_CONFIG_PATH": str(self.config_path), "PYTHONPATH": str(SRC)}

    def start(self, task: str, *args: str) -> subprocess.Popen:
        """Start `python -m <package> <task> --local-scheduler [args]` (with `self.features` set, the
        features of that file instead of FEATURES: tests/with_features.py); finish it with wait_for()."""
        features = getattr(self, "features", None)
        command = [sys.executable, str(PROJECT / "tests" / "with_features.py"), str(features)] if features else None
        return subprocess.Popen(
            [*(command or [sys.executable, "-m", MODULE]), task, "--local-scheduler", *args],
            cwd=self.root,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, task: str, *args: str) -> subprocess.CompletedProcess:
        return wait_for(self.start(task, *args))

    def write_raw(self, train: pd.DataFrame, test: pd.DataFrame, sample: pd.DataFrame, **tables: pd.DataFrame) -> None:
        """train.csv, test.csv, sample_submission.csv, and a CSV for each other table given by name."""
        named = {"train": train, "test": test, "sample_submission": sample, **tables}
        for name, table in named.items():
            table.to_csv(self.raw / f"{name}.csv", index=False)

    def done_folders(self, task: str) -> list[Path]:
        """The task's cache folders that hold a finished result (a manifest; not temporary folders,
        whose names start with a dot, which hold one just before they are renamed into place)."""
        return sorted(p.parent for p in (self.cache / task).glob(f"[!.]*/{MANIFEST}"))

    def cache_folders(self) -> set[str]:
        """Every folder under the cache, as paths relative to it."""
        return {str(p.relative_to(self.cache)) for p in self.cache.rglob("*") if p.is_dir()}


def wait_for(process: subprocess.Popen) -> subprocess.CompletedProcess:
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def tasks_run(result: subprocess.CompletedProcess) -> list[str]:
    """The tasks a run started, from its `run <Task>` lines."""
    return [line.split()[1] for line in result.stdout.splitlines() if line.startswith("run ")]


def describe(result: subprocess.CompletedProcess) -> str:
    """A run's exit code and output, for assertion messages."""
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    """An isolated pipeline in this test's tmp_path (no raw files yet: call write_raw)."""
    return Pipeline(tmp_path)


@pytest.fixture
def luigi_config():
    """set(section, key, value): change this process's luigi config until the test ends."""
    import luigi.configuration

    config = luigi.configuration.get_config()
    saved: list[tuple[str, str, str | None]] = []

    def set_value(section: str, key: str, value: object) -> None:
        old = config.get(section, key, raw=True) if config.has_option(section, key) else None
        saved.append((section, key, old))
        config.set(section, key, str(value))

    yield set_value
    for section, key, old in reversed(saved):
        if old is None:
            config.remove_option(section, key)
        else:
            config.set(section, key, old)


@pytest.fixture
def project_competition(luigi_config, competition: Competition) -> Competition:
    """This process's [competition] config set to the project's luigi.cfg values, whatever
    config file luigi found, for code called in-process."""
    for key in ("problem_type", "id_column", "target_column", "n_folds", "seed"):
        luigi_config("competition", key, getattr(competition, key))
    return competition


# --- S3 over HTTP: moto's server on 127.0.0.1 --------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class S3Log(logging.Handler):
    """The server's request log: (method, path) of every request, and hooks run when one arrives.

    Werkzeug logs a request before sending its response, so a hook runs before the client sees
    the answer (to replace an object between a HEAD and the GET that follows it, say).
    """

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.requests: list[tuple[str, str]] = []
        self.hooks: list[tuple[str, str, Callable[[], None]]] = []

    def handle(self, record: logging.LogRecord) -> bool:
        """Without the handler's lock: a hook's own requests are logged from other server threads."""
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        if not record.args or not isinstance(record.args, tuple):
            return
        method, _, rest = _ANSI.sub("", str(record.args[0])).partition(" ")
        path = rest.rpartition(" ")[0]
        self.requests.append((method, path))
        for hook in list(self.hooks):  # a hook's path matches with its query string, if it has one
            if hook[0] == method and (path if "?" in hook[1] else path.split("?")[0]) == hook[1]:
                with contextlib.suppress(ValueError):  # another thread may have run it
                    self.hooks.remove(hook)
                    hook[2]()

    def count(self, method: str, path_prefix: str = "/") -> int:
        return sum(1 for m, p in self.requests if m == method and p.startswith(path_prefix))


@dataclass
class S3Server:
    endpoint: str
    log: S3Log


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server (a real HTTP S3 API) on 127.0.0.1 and a free port, stopped at the end."""
    from moto.server import ThreadedMotoServer

    log = S3Log()
    werkzeug = logging.getLogger("werkzeug")
    werkzeug.addHandler(log)
    werkzeug.setLevel(logging.INFO)
    werkzeug.propagate = False
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3Server(f"http://{host}:{port}", log)
    finally:
        server.stop()
        werkzeug.removeHandler(log)


def s3_environment(endpoint: str, home: Path) -> dict[str, str]:
    """Fake credentials for the test server; ~/.aws files point into home, so the user's are never read."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


_AWS_UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_REGION")


@dataclass
class Bucket:
    """A fresh bucket on the test server, its client, and the luigi config that points at it."""

    name: str
    prefix: str
    client: Any
    server: S3Server

    def put(self, name: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.name, Key=f"{self.prefix}/{name}", Body=data)

    def path(self, name: str) -> str:
        """The request path of a file's object (path-style addressing)."""
        return f"/{self.name}/{self.prefix}/{name}"


@pytest.fixture
def bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, luigi_config) -> Bucket:
    """An empty bucket; this process's environment and luigi config ([s3], [paths] raw) use it."""
    import uuid

    import boto3

    for name in _AWS_UNSET:
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_environment(s3_server.endpoint, tmp_path / "aws").items():
        monkeypatch.setenv(name, value)
    name = f"comp-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3")
    client.create_bucket(Bucket=name)
    (tmp_path / "raw").mkdir()
    luigi_config("s3", "bucket", name)
    luigi_config("s3", "prefix", "comp")
    luigi_config("paths", "raw", tmp_path / "raw")
    return Bucket(name, "comp", client, s3_server)
