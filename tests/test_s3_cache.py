"""The cache on S3 (`[paths] cache = s3://...`) in a baked project, against moto's S3 server on
127.0.0.1: the same hashes and submission as a local cache, an up-to-date run that downloads no
data, two finishers of one result (the first manifest wins), and two working copies (two
machines) sharing the pipeline through a real luigid on a free port."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import make, tasks_run
from test_s3 import BUCKET, Server, client_of
from test_s3 import server as server  # the fixture, for the tests below
from test_scheduler import SLOW_FEATURES, done_lines, free_port

CACHE = f"s3://{BUCKET}/machines/cache"


def small(project: Path) -> None:
    cfg = project / "luigi.cfg"
    text = cfg.read_text().replace("n_folds = 5", "n_folds = 2")
    cfg.write_text(
        text.replace('model_params = {"max_iter": 200, "learning_rate": 0.05}', 'model_params = {"max_iter": 20}')
    )


def on_s3(project: Path, cache: str = CACHE) -> Path:
    cfg = project / "luigi.cfg"
    cfg.write_text(cfg.read_text().replace("cache = data/cache\n", f"cache = {cache}\n", 1))
    return project


@pytest.fixture(scope="module")
def project(bake, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small project with its demo data, no result yet."""
    project = bake(tmp_path_factory.mktemp("s3cache"))
    small(project)
    make(project, "data")
    return project


def copy(project: Path, to: Path) -> Path:
    return Path(shutil.copytree(project, to / project.name, symlinks=True))


def newest_submission(project: Path) -> bytes:
    return max((project / "submissions").glob("*.csv"), key=lambda p: p.stat().st_mtime).read_bytes()


def s3_keys(server: Server, prefix: str) -> list[str]:
    pages = client_of(server).get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def test_a_cache_on_s3_gives_the_results_of_a_local_one_and_an_up_to_date_run_reads_no_data(
    project: Path, server: Server, tmp_path: Path
):
    local = copy(project, tmp_path / "local")
    make(local, "all")
    remote = on_s3(copy(project, tmp_path / "remote"))
    make(remote, "all", environment=server.environment)

    here = {
        str(p.parent.relative_to(local / "data" / "cache"))
        for p in (local / "data" / "cache").glob("*/*/manifest.json")
    }
    keys = s3_keys(server, "machines/cache/")
    there = {key.removeprefix("machines/cache/").rpartition("/")[0] for key in keys if key.endswith("/manifest.json")}
    assert here == there and len(here) >= 8  # the same hashes: fingerprints are content checksums
    assert newest_submission(local) == newest_submission(remote)
    # Every data object is under the run prefix its result's manifest names: no leftovers
    for result in there:
        manifest = json.loads(
            client_of(server).get_object(Bucket=BUCKET, Key=f"machines/cache/{result}/manifest.json")["Body"].read()
        )
        objects = {key for key in keys if key.startswith(f"machines/cache/{result}/run-")}
        assert objects == {f"machines/cache/{result}/{manifest['objects']}/{name}" for name in manifest["files"]}

    # Another working copy with the same submission file but an empty mirror: nothing runs, no data is read
    shutil.rmtree(remote / "data" / "cache-s3")
    before = len(server.log.requests)
    again = make(remote, "all", environment=server.environment)
    assert tasks_run(again) == []
    requests = server.log.requests[before:]
    gets = [path for method, path in requests if method == "GET"]
    assert gets and all(path.endswith("/manifest.json") for path in gets), gets  # manifests only, no data
    heads = [path for method, path in requests if method == "HEAD"]
    assert len(heads) == len(set(heads)), heads  # complete(): one request per task


RACE = """
import json, sys
from pathlib import Path
from {module}.shared_cache import S3Results

store = S3Results(sys.argv[1])
won = []
for n in (1, 2):
    folder = Path(sys.argv[2]) / str(n)
    folder.mkdir()
    (folder / "table.parquet").write_bytes(b"x" * n)
    (folder / "manifest.json").write_text(json.dumps({{"files": {{"table.parquet": {{"bytes": n}}}}, "n": n}}))
    won.append(store.publish("Task", "0123456789abcdef", folder))
print(json.dumps({{"won": won, "second": json.loads((folder / "manifest.json").read_text())["n"],
                  "bytes": (folder / "table.parquet").read_bytes().decode()}}))
"""


def test_two_finishers_of_one_result_the_first_manifest_wins(project: Path, server: Server, tmp_path: Path):
    package = next((project / "src").iterdir())
    result = subprocess.run(
        [sys.executable, "-c", RACE.format(module=package.name), f"s3://{BUCKET}/race/cache", str(tmp_path)],
        capture_output=True, text=True, cwd=project, timeout=120,
        env={**server.environment, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(project / "src")},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.splitlines()[-1])
    assert outcome == {"won": [True, False], "second": 1, "bytes": "x"}  # the loser now holds the winner's result
    keys = s3_keys(server, "race/cache/")
    manifest = json.loads(
        client_of(server).get_object(Bucket=BUCKET, Key="race/cache/Task/0123456789abcdef/manifest.json")["Body"].read()
    )
    assert manifest["n"] == 1
    assert sorted(keys) == sorted(
        [
            "race/cache/Task/0123456789abcdef/manifest.json",
            f"race/cache/Task/0123456789abcdef/{manifest['objects']}/table.parquet",
        ]
    )  # the loser's objects deleted


def start_worker(project: Path, port: int, environment: dict[str, str]) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("LUIGI_CONFIG_PATH", "PYTHONPATH", "MAKEFLAGS")}
    return subprocess.Popen(
        ["make", "--no-print-directory", "-C", str(project), "worker", f"VENV={sys.prefix}", "WORKERS=1",
         f"SCHEDULER_HOST=localhost:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**env, **environment},
        start_new_session=True,
    )  # fmt: skip


def test_two_machines_share_one_s3_cache_through_luigid_and_finish_a_killed_worker_s_task(
    project: Path, server: Server, tmp_path: Path
):
    """Two working copies of one project (two machines) with one S3 cache and one luigid: the
    first worker is killed (kill -9) in the middle of a slow feature; the second finishes the
    pipeline; no task runs twice; nothing on S3 is half-done; the submission is a local run's."""
    base = copy(project, tmp_path / "base")
    features = base / "src" / "kaggle_competition" / "features"
    (features / "slow.py").write_text(SLOW_FEATURES)
    init = features / "__init__.py"
    text = init.read_text().replace("FEATURES = [", "from .slow import SlowA, SlowB, SlowC, SlowD\n\nFEATURES = [")
    init.write_text(
        text.replace("    TargetEncoding,\n]", "    TargetEncoding,\n    SlowA,\n    SlowB,\n    SlowC,\n    SlowD,\n]")
    )
    cfg = base / "luigi.cfg"
    cfg.write_text(
        cfg.read_text()
        .replace("worker_disconnect_delay = 20", "worker_disconnect_delay = 3")
        .replace("retry_delay = 10", "retry_delay = 1")
    )
    local = copy(base, tmp_path / "local")
    first = on_s3(copy(base, tmp_path / "machine-a"), f"s3://{BUCKET}/two/cache")
    second = on_s3(copy(base, tmp_path / "machine-b"), f"s3://{BUCKET}/two/cache")
    port = free_port()
    make(first, "scheduler", SCHEDULER_PORT=str(port))
    try:
        worker_a, worker_b = (
            start_worker(first, port, server.environment),
            start_worker(second, port, server.environment),
        )
        outputs = {}
        reader = threading.Thread(target=lambda: outputs.update(b=worker_b.communicate(timeout=300)[0]))
        reader.start()
        before_kill, killed = [], None
        for line in worker_a.stdout:
            before_kill.append(line)
            if line.startswith("run   Slow"):
                killed = line.split()[1]
                time.sleep(1)
                os.killpg(worker_a.pid, signal.SIGKILL)
                break
        worker_a.wait(timeout=60)
        reader.join(timeout=320)
        assert killed, "".join(before_kill)
        assert worker_b.returncode == 0, outputs["b"]
    finally:
        make(first, "scheduler-stop", SCHEDULER_PORT=str(port))
    by_a, by_b = done_lines("".join(before_kill)), done_lines(outputs["b"])
    assert killed not in by_a and killed in by_b and "Submission" in by_b
    assert not set(by_a) & set(by_b)  # no task ran twice
    assert {t for t in by_b if t.startswith("Slow")} - {killed}  # the second machine had its own share

    keys = s3_keys(server, "two/cache/")
    manifests = [key for key in keys if key.endswith("/manifest.json")]
    assert len([key for key in manifests if f"/{killed}/" in key]) == 1
    for key in keys:  # every object belongs to a done result, under the run prefix its manifest names
        result, _, rest = key.removeprefix("two/cache/").partition("/run-")
        if rest:
            manifest = json.loads(
                client_of(server).get_object(Bucket=BUCKET, Key=f"two/cache/{result}/manifest.json")["Body"].read()
            )
            assert f"run-{rest}".split("/")[0] == manifest["objects"]

    make(local, "all", WORKERS="2")
    assert newest_submission(local) == newest_submission(second)
