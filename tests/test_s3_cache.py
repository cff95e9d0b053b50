"""The cache on S3 (`[paths] cache = s3://...`) in a baked project, against moto's S3 server on
127.0.0.1: the same hashes and submission as a local cache, an up-to-date run that downloads no
data, two finishers of one result (the first manifest wins), and two working copies (two
machines) sharing the pipeline through a real luigid on a free port."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import make, tasks_run
from test_s3 import BUCKET, Server, client_of
from test_s3 import server as server  # the fixture, for the tests below
from test_scheduler import SLOW_FEATURES, free_port, kill_the_first_mid_feature

CACHE = f"s3://{BUCKET}/machines/cache"
MANIFEST = "/manifest.json"


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
from {module}.pipeline.storage.shared_cache import S3Results

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
        text.replace("    LastVisit,\n]", "    LastVisit,\n    SlowA,\n    SlowB,\n    SlowC,\n    SlowD,\n]")
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
        killed, _ = kill_the_first_mid_feature(
            start_worker(first, port, server.environment), start_worker(second, port, server.environment)
        )
    finally:
        make(first, "scheduler-stop", SCHEDULER_PORT=str(port))

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


KILLED_UPLOAD = """
import os, signal, sys
from pathlib import Path
from {module}.pipeline.storage.shared_cache import S3Results

store = S3Results(sys.argv[1])
folder = Path(sys.argv[2])
for name in ("a.parquet", "b.parquet"):
    (folder / name).write_bytes(b"x" * 100)
(folder / "manifest.json").write_text('{{"files": {{"a.parquet": {{"bytes": 100}}, "b.parquet": {{"bytes": 100}}}}}}')
client, uploaded = store._client(), []
upload = client.upload_file


def killed_after_the_first_file(*args, **kwargs):
    if uploaded:
        os.kill(os.getpid(), signal.SIGKILL)
    uploaded.append(upload(*args, **kwargs))


client.upload_file = killed_after_the_first_file
store.publish("Killed", "0123456789abcdef", folder)
"""


@dataclass
class Tools:
    """A project with its cache on S3 after `make all`, and what each run tool then printed."""

    project: Path
    steps: dict[str, subprocess.CompletedProcess] = field(default_factory=dict)
    keys: dict[str, list[str]] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        steps = {name: [r.args, r.returncode, r.stdout, r.stderr] for name, r in self.steps.items()}
        path.write_text(json.dumps({"project": str(self.project), "steps": steps, "keys": self.keys}))

    @classmethod
    def load(cls, path: Path) -> Tools:
        saved = json.loads(path.read_text())
        steps = {name: subprocess.CompletedProcess(*values) for name, values in saved["steps"].items()}
        return cls(Path(saved["project"]), steps, saved["keys"])


def cache_keys(server: Server) -> list[str]:
    return s3_keys(server, "tools/cache/")


def done_results(keys: list[str]) -> set[str]:
    return {key.removeprefix("tools/cache/").removesuffix("/manifest.json") for key in keys if key.endswith(MANIFEST)}


@pytest.fixture(scope="module")
def tools(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Tools:
    """The run tools played once per test session, also under pytest-xdist: the first worker that
    needs them plays them and records what they printed; another worker waits and reads that
    (xdist would otherwise play them in each worker that runs one of the tests)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        return play_tools(request.getfixturevalue("project"), request.getfixturevalue("server"), tmp_path_factory)
    shared = tmp_path_factory.getbasetemp().parent  # the session's folder, common to its workers
    recorded = shared / "s3-cache-tools.json"
    with open(shared / "s3-cache-tools.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if recorded.is_file():
            return Tools.load(recorded)
        tools = play_tools(request.getfixturevalue("project"), request.getfixturevalue("server"), tmp_path_factory)
        tools.save(recorded)
        return tools


def play_tools(project: Path, server: Server, tmp_path_factory: pytest.TempPathFactory) -> Tools:
    """The run tools on a cache on S3, one step after another: status, report and rerun from an
    empty mirror, blend and tune, verify (damaged objects, FIX=1, make all, verify again), gc (a
    result of another seed and two unfinished uploads: listed, kept while young, deleted with
    CONFIRM=1 STALE_HOURS=0), and a last make all. (About 45 s.)"""
    root = tmp_path_factory.mktemp("tools")
    tools = Tools(on_s3(copy(project, root), f"s3://{BUCKET}/tools/cache"))
    p, env, steps, s3 = tools.project, server.environment, tools.steps, client_of(server)
    cfg = p / "luigi.cfg"
    cfg.write_text(cfg.read_text().replace("importance_repeats = 1", "importance_repeats = 0"))  # for time

    def step(name: str, *targets: str, **variables: str) -> subprocess.CompletedProcess:
        """Run a make target; its exit code is checked by the tests (the pipeline's runs: here)."""
        check = targets[0] in ("all", "split", "blend", "tune")
        steps[name] = make(p, *targets, check=check, environment={**env, "OMP_NUM_THREADS": "1"}, **variables)
        return steps[name]

    step("all", "all")
    tools.keys["after_all"] = cache_keys(server)
    shutil.rmtree(p / "data" / "cache-s3")  # another machine: nothing in its mirror
    step("status", "status")
    step("report", "report")
    run = max((p / "runs").glob("*.json")).stem
    step("rerun", "rerun", RUN=run)
    step("blend", "blend", MODELS="hgb linear")
    step("tune", "tune", MODEL="linear", TRIALS="2")
    step("runs", "runs")

    done = sorted(done_results(cache_keys(server)))
    features = next(result for result in done if result.startswith("NumericColumns/"))
    submission = next(result for result in done if result.startswith("Submission/"))
    tools.keys["damaged"] = [features, submission]
    for result, how in ((features, "altered"), (submission, "deleted")):
        manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=f"tools/cache/{result}{MANIFEST}")["Body"].read())
        name = sorted(manifest["files"])[0]
        key = f"tools/cache/{result}/{manifest['objects']}/{name}"
        if how == "deleted":
            s3.delete_object(Bucket=BUCKET, Key=key)
        else:
            body = bytearray(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
            body[len(body) // 2] ^= 0xFF  # the same size, other bytes
            s3.put_object(Bucket=BUCKET, Key=key, Body=bytes(body))
    step("verify_damaged", "verify")
    step("verify_fix", "verify", FIX="1")
    tools.keys["after_fix"] = cache_keys(server)
    step("rebuild", "all")
    step("verify_again", "verify", ALL="1")  # every result, Blend and Tune's study among them

    step("seed", "split", SEED="7")  # a Split result nothing names
    package = next((p / "src").iterdir()).name
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_UPLOAD.format(module=package), f"s3://{BUCKET}/tools/cache", str(root)],
        capture_output=True, text=True, cwd=p, timeout=120,
        env={**env, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(p / "src")},
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    s3.put_object(Bucket=BUCKET, Key=f"tools/cache/{features}/run-elsewhere-1-0000/numbers.parquet", Body=b"y")
    tools.keys["before_gc"] = cache_keys(server)
    step("gc_dry", "gc")
    tools.keys["after_dry_gc"] = cache_keys(server)
    step("gc", "gc", CONFIRM="1", STALE_HOURS="0")
    tools.keys["after_gc"] = cache_keys(server)
    step("last", "all")
    return tools


def test_status_report_and_rerun_work_from_s3_with_an_empty_mirror(tools: Tools):
    """With the results on S3 and none in this machine's mirror, `make status` says make runs
    nothing, `make report` draws the latest run's out-of-fold plot (its table read from S3)
    and `make rerun` finds every recorded result still cached."""
    steps = tools.steps
    for name in ("status", "report", "rerun"):
        assert steps[name].returncode == 0, steps[name].stderr
    assert "Submission is complete: make runs nothing" in steps["status"].stdout
    report = (tools.project / "reports" / "report.md").read_text()
    assert "![Out-of-fold predictions](oof.png)" in report  # Train's oof table, downloaded from S3
    assert "reuses its cached results and runs nothing" in steps["rerun"].stdout


def test_blend_and_tune_run_with_the_cache_on_s3_and_the_study_stays_on_this_machine(tools: Tools):
    """`make blend` and `make tune TRIALS=2` work with the cache on S3: the blend's result is on S3,
    Tune's study journal is in the local mirror (not on S3) and `make runs` still lists the runs."""
    steps = tools.steps
    assert "Blend (weights) CV" in steps["blend"].stdout
    assert any(key.startswith("tools/cache/Blend/") for key in tools.keys["before_gc"])
    assert "Tune linear: best CV" in steps["tune"].stdout
    journals = list((tools.project / "data" / "cache-s3").glob("*/tools/cache/Tune/linear-*/journal.log"))
    assert len(journals) == 1 and not any("/Tune/" in key for key in tools.keys["before_gc"])
    assert journals[0].exists()  # gc kept it: runs/tune-linear.json names it
    assert steps["runs"].returncode == 0, steps["runs"].stderr
    assert len(steps["runs"].stdout.splitlines()) == 1 + 3  # header, then hgb's, linear's and the blend's runs


def test_verify_checks_the_results_on_s3_and_fix_gets_them_built_again(tools: Tools):
    """`make verify` checks each current result's objects on S3 against its manifest: a file
    altered at the same size and a missing file are both reported (exit 1); FIX=1 deletes their
    manifests (no longer done, no half result looks done), and `make all` builds just those again;
    then `make verify ALL=1` finds every result on S3 and in the mirror whole."""
    steps, (features, submission) = tools.steps, tools.keys["damaged"]
    damaged = steps["verify_damaged"]
    assert damaged.returncode != 0
    lines = [line for line in damaged.stdout.splitlines() if line.startswith("damaged  s3://")]
    assert len(lines) == 2
    assert any(features in line and "does not match its manifest's sha256" in line for line in lines), lines
    assert any(submission in line and "is missing" in line for line in lines), lines
    assert steps["verify_fix"].returncode != 0 and "manifest deleted" in steps["verify_fix"].stdout
    assert done_results(tools.keys["after_all"]) - done_results(tools.keys["after_fix"]) == {features, submission}
    rebuilt = tasks_run(steps["rebuild"])
    assert {"NumericColumns", "Submission"} <= set(rebuilt) and "Split" not in rebuilt
    again = steps["verify_again"].stdout
    assert steps["verify_again"].returncode == 0, again  # ALL=1: a Tune study (no manifest) is not a result
    assert "on S3 in the cache checked, 0 damaged: every file matches its manifest" in again


def test_gc_on_s3_deletes_unused_results_and_stale_uploads_and_keeps_the_pipeline(tools: Tools):
    """`make gc` lists a result on S3 nothing names (another seed's Split) and deletes it only with
    CONFIRM=1; the files of killed uploads (no manifest, or a prefix the manifest does not name)
    are kept while younger than STALE_HOURS and then deleted; what the run needs stays: the next
    `make all` runs nothing."""
    steps, keys = tools.steps, tools.keys
    assert steps["gc_dry"].returncode == 0 and steps["gc"].returncode == 0, steps["gc"].stderr
    seeded = done_results(keys["before_gc"]) - done_results(keys["after_fix"])
    splits = [result for result in seeded if result.startswith("Split/")]
    assert len(splits) == 1
    leftovers = [key for key in keys["before_gc"] if "/Killed/" in key or "/run-elsewhere-" in key]
    assert len(leftovers) == 2  # the killed upload's first file, and the other run's file
    assert splits[0] in steps["gc_dry"].stdout and "CONFIRM=1" in steps["gc_dry"].stdout
    assert "Kept 2 unfinished upload(s)" in steps["gc_dry"].stdout and "Killed" not in steps["gc_dry"].stdout
    deleted = steps["gc"].stdout
    assert "Killed/0123456789abcdef/run-" in deleted and "run-elsewhere-" in deleted and splits[0] in deleted
    assert keys["after_dry_gc"] == keys["before_gc"]
    gone = set(keys["before_gc"]) - set(keys["after_gc"])
    assert gone == {key for key in keys["before_gc"] if key.startswith(f"tools/cache/{splits[0]}/")} | set(leftovers)
    assert not set(keys["after_gc"]) - set(keys["before_gc"])
    mirror = next((tools.project / "data" / "cache-s3").glob("*/tools/cache"))
    assert not (mirror / splits[0]).exists()  # the mirror's copy is collected too
    assert tasks_run(steps["last"]) == []
