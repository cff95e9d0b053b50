"""A project baked with an S3 bucket, run through its make targets against moto's S3 server.

The server is a real HTTP S3 API on 127.0.0.1 (in this process, so its request log is ours
to read); the baked project reaches it through AWS_ENDPOINT_URL_S3 and fake credentials.
"""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TEMPLATE, make, tasks_run

BUCKET, PREFIX = "kaggle-comp-data", "competitions/demo"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class RequestLog(logging.Handler):
    """(method, path) of every request the server answers, from werkzeug's request log."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.requests: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.args, tuple) and record.args:
            method, _, rest = _ANSI.sub("", str(record.args[0])).partition(" ")
            self.requests.append((method, rest.rpartition(" ")[0]))

    def count(self, method: str, prefix: str = f"/{BUCKET}/") -> int:
        return sum(1 for m, p in self.requests if m == method and p.startswith(prefix))


@dataclass
class Server:
    endpoint: str
    log: RequestLog
    environment: dict[str, str]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """moto's S3 server on 127.0.0.1 and a free port with the competition's bucket; stopped at the end."""
    import boto3
    from moto.server import ThreadedMotoServer

    log = RequestLog()
    werkzeug = logging.getLogger("werkzeug")
    werkzeug.addHandler(log)
    werkzeug.setLevel(logging.INFO)
    werkzeug.propagate = False
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    unset = pytest.MonkeyPatch()
    try:
        host, port = moto.get_host_and_port()
        home = tmp_path_factory.mktemp("aws")  # boto3's config files: never the user's ~/.aws
        environment = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": f"http://{host}:{port}",
            "AWS_CONFIG_FILE": str(home / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_REGION"):
            unset.delenv(name, raising=False)  # make() passes this process's environment on
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        )
        session.client("s3", endpoint_url=environment["AWS_ENDPOINT_URL_S3"]).create_bucket(Bucket=BUCKET)
        yield Server(environment["AWS_ENDPOINT_URL_S3"], log, environment)
    finally:
        unset.undo()
        moto.stop()
        werkzeug.removeHandler(log)


def client_of(server: Server):
    import boto3

    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client("s3", endpoint_url=server.endpoint)


def small_competition(rows: int = 300, seed: int = 0) -> dict[str, bytes]:
    """A binary competition's three CSV files, as bytes."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "id": np.arange(rows),
            "size": rng.normal(size=rows).round(4),
            "color": rng.choice(["red", "blue", "green"], rows),
        }
    )
    target = (frame["size"] + (frame["color"] == "red") + rng.normal(scale=0.5, size=rows) > 0.5).astype(int)
    cut = rows * 4 // 5
    train = frame.iloc[:cut].assign(target=target.iloc[:cut])
    test = frame.iloc[cut:]
    sample = pd.DataFrame({"id": test["id"], "target": 0.5})
    return {
        name: table.to_csv(index=False).encode()
        for name, table in (("train.csv", train), ("test.csv", test), ("sample_submission.csv", sample))
    }


@dataclass
class Fetched:
    project: Path
    files: dict[str, bytes]
    data: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def fetched(server: Server, bake, tmp_path_factory: pytest.TempPathFactory) -> Fetched:
    """A project baked with the bucket, after `make data` fetched the uploaded competition."""
    files = small_competition()
    client = client_of(server)
    for name, data in files.items():
        client.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{name}", Body=data)
    project = bake(tmp_path_factory.mktemp("s3"), s3_bucket=BUCKET, s3_prefix=PREFIX)
    data = make(project, "data", environment=server.environment)
    return Fetched(project, files, data)


def test_make_data_fetches_byte_identical_files(fetched: Fetched, server: Server):
    """`make data` runs Fetch before RawData and leaves the objects' exact bytes in data/raw."""
    assert tasks_run(fetched.data) == ["Fetch", "RawData"], fetched.data.stdout
    raw = fetched.project / "data" / "raw"
    assert {name: (raw / name).read_bytes() for name in fetched.files} == fetched.files
    assert server.log.count("GET", f"/{BUCKET}/{PREFIX}/") == len(fetched.files)


def test_make_all_then_refetch_and_push(fetched: Fetched, server: Server):
    """`make all` makes a submission from the fetched data without asking S3 anything; a second
    `make fetch` asks (HEAD) but transfers nothing; `make push` uploads the submission."""
    before = len(server.log.requests)
    result = make(fetched.project, "all", environment=server.environment)
    assert "Fetch" not in tasks_run(result)
    [line] = [line for line in result.stdout.splitlines() if line.startswith("Submission: ")]
    submission = fetched.project / line.removeprefix("Submission: ")
    assert submission.is_file()
    assert len(server.log.requests) == before

    gets, heads = server.log.count("GET"), server.log.count("HEAD")
    again = make(fetched.project, "fetch", environment=server.environment)
    assert tasks_run(again) == ["Fetch"]
    assert server.log.count("GET") == gets
    assert server.log.count("HEAD") == heads + len(fetched.files)

    pushed = make(fetched.project, "push", environment=server.environment)
    key = f"{PREFIX}/submissions/{submission.name}"
    assert f"s3://{BUCKET}/{key}" in pushed.stdout
    assert client_of(server).get_object(Bucket=BUCKET, Key=key)["Body"].read() == submission.read_bytes()


def test_large_object_is_downloaded_in_parts_with_progress(fetched: Fetched, server: Server, tmp_path: Path):
    """A 40 MB object added under the prefix (luigi.cfg's `files = *`: every object there) is fetched
    by ranged GETs in parallel, with progress lines on stderr; the files fetched before are not
    fetched again (one listing of the prefix, then the new object's parts)."""
    big = os.urandom(40 << 20)
    client_of(server).upload_fileobj(io.BytesIO(big), BUCKET, f"{PREFIX}/big.bin")
    gets, listings = server.log.count("GET"), server.log.count("GET", f"/{BUCKET}?list-type=2")
    result = make(fetched.project, "fetch", environment=server.environment)
    assert (fetched.project / "data" / "raw" / "big.bin").read_bytes() == big
    assert server.log.count("GET", f"/{BUCKET}/{PREFIX}/big.bin") >= 5
    assert server.log.count("GET", f"/{BUCKET}?list-type=2") == listings + 1
    assert server.log.count("GET") - gets == server.log.count("GET", f"/{BUCKET}/{PREFIX}/big.bin")
    progress = [line for line in result.stderr.splitlines() if line.startswith("fetch big.bin:")]
    assert len(progress) >= 5, result.stderr
    assert re.fullmatch(r"fetch big\.bin: 100% 40/40 MB, \d+ MB/s", progress[-1]), progress[-1]


def test_fetch_benchmark_prints_both_throughputs_and_the_ratio():
    """bench/fetch.py runs with a tiny object and prints its three figures (not asserted)."""
    result = subprocess.run(
        [sys.executable, str(TEMPLATE / "bench" / "fetch.py"), "1", "1"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"Fetch task\s+\d+\.\d MB/s", result.stdout), result.stdout
    assert re.search(r"boto3 download_file\s+\d+\.\d MB/s", result.stdout), result.stdout
    assert re.search(r"time ratio \(goal: under 1\.10\)\s+\d+\.\d\dx", result.stdout), result.stdout
