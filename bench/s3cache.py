"""Benchmark: the cache on S3 (`[paths] cache = s3://...`) against moto's S3 server on 127.0.0.1,
on the large synthetic competition of bench/large.py with the four CPU-bound features.

- `make features` through one luigid with the cache on S3: two worker processes (WORKERS=1 each,
  two working copies of the project, as two machines) against one, alternating --repeat times
  (the features' results are removed from S3 and the mirrors before each run); medians and
  their ratio (goal: at least 1.6x on 2 cores);
- an up-to-date `make all` with the cache on S3 against the same with the local cache (medians);
- a worker killed (SIGKILL) in the middle of a feature: seconds until the other machine's worker
  starts that feature again, with the project's shipped [scheduler] settings (goal: within a minute);
- the two ways to read a result on S3, on Ingest's train table: Parquet columns over ranged reads
  (pyarrow's S3 filesystem) against the mirror (download the file whole, then read it locally), for
  two columns and for every column, read once and read five times (Train's folds read theirs).

Usage: python bench/s3cache.py [--rows N] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from large import bake, make, use_cpu_features, write_competition
from scheduler import scheduler

BUCKET, PREFIX = "bench-cache", "project/cache"


def moto() -> tuple[object, dict[str, str]]:
    """moto's S3 server on 127.0.0.1 and a free port, with the bucket; (server, environment)."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    home = Path(tempfile.mkdtemp(prefix="bench-aws-"))
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": f"http://{host}:{port}",
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}
    session = boto3.session.Session(**keys)
    session.client("s3", endpoint_url=env["AWS_ENDPOINT_URL_S3"]).create_bucket(Bucket=BUCKET)
    return server, env


def environment(extra: dict[str, str]) -> dict[str, str]:
    skip = ("MAKEFLAGS", "LUIGI_CONFIG_PATH", "PYTHONPATH", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL")
    return {**{k: v for k, v in os.environ.items() if k not in skip}, **extra}


def run(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def forget_features(machines: list[Path], env: dict[str, str]) -> None:
    """Remove the four features' results from S3 and from every machine's mirror."""
    import boto3

    client = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client("s3", endpoint_url=env["AWS_ENDPOINT_URL_S3"])
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{PREFIX}/Rank")
    keys = [{"Key": item["Key"]} for page in pages for item in page.get("Contents", [])]
    for start in range(0, len(keys), 1000):
        client.delete_objects(Bucket=BUCKET, Delete={"Objects": keys[start : start + 1000]})
    for machine in machines:
        for folder in (machine / "data" / "cache-s3").glob("*/*/*/Rank*"):
            shutil.rmtree(folder)


def workers(machines: list[Path], port: int, env: dict[str, str]) -> list[subprocess.Popen]:
    return [
        subprocess.Popen(make(machine, "features", "WORKERS=1", f"SCHEDULER_HOST=localhost:{port}"),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                         start_new_session=True)
        for machine in machines
    ]  # fmt: skip


def cpu_seconds() -> tuple[float, float]:
    """CPU seconds so far of this process (moto's server threads: the S3 side) and of its waited-for
    children (the workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def features_seconds(machines: list[Path], port: int, env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds of one `make features` by the machines' workers, and the CPU seconds it took
    moto's server and the workers."""
    started, (s3_before, workers_before) = time.perf_counter(), cpu_seconds()
    for worker in workers(machines, port, env):
        output, _ = worker.communicate()
        if worker.returncode:
            raise SystemExit(f"a worker failed:\n{output[-3000:]}")
    s3_after, workers_after = cpu_seconds()
    return time.perf_counter() - started, s3_after - s3_before, workers_after - workers_before


def pickup_seconds(machines: list[Path], port: int, env: dict[str, str]) -> float:
    """Kill the first machine's worker as it starts a feature; seconds until the other starts it."""
    first, second = workers(machines, port, env)
    feature, killed = None, 0.0
    for line in first.stdout:
        if line.startswith("run   Rank"):
            feature = line.split()[1]
            os.killpg(first.pid, signal.SIGKILL)
            killed = time.perf_counter()
            break
    first.wait()
    seconds = float("nan")
    for line in second.stdout:
        if feature and line.startswith(f"run   {feature}"):
            seconds = time.perf_counter() - killed
            break
    second.communicate()
    if second.returncode or feature is None:
        raise SystemExit("the second worker failed, or the first started no feature")
    return seconds


def up_to_date_seconds(project: Path, env: dict[str, str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run(make(project, "all"), env)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def read_seconds(env: dict[str, str], repeat: int) -> dict[str, float]:
    """Medians of reading Ingest's train table on S3: two columns and every column, over ranged
    reads and through a download into a local mirror (then read locally: the mirror warm)."""
    import boto3
    import pyarrow.parquet as pq
    from pyarrow import fs

    endpoint = env["AWS_ENDPOINT_URL_S3"]
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}
    client = boto3.session.Session(**keys).client("s3", endpoint_url=endpoint)
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{PREFIX}/Ingest/")
    listed = [item["Key"] for page in pages for item in page.get("Contents", [])]
    [key] = [name for name in listed if name.endswith("/train.parquet")]
    s3 = fs.S3FileSystem(access_key="testing", secret_key="testing", region="us-east-1",
                         endpoint_override=endpoint.removeprefix("http://"), scheme="http")  # fmt: skip
    every = pq.read_schema(f"{BUCKET}/{key}", filesystem=s3).names
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-mirror-") as mirror:
        local = Path(mirror) / "train.parquet"
        for label, columns in (("2 columns", every[:2]), ("every column", every)):
            ranged, download, warm = [], [], []
            for _ in range(repeat):
                started = time.perf_counter()
                pq.read_table(f"{BUCKET}/{key}", columns=columns, filesystem=s3)
                ranged.append(time.perf_counter() - started)
                local.unlink(missing_ok=True)
                started = time.perf_counter()
                client.download_file(BUCKET, key, str(local))
                pq.read_table(local, columns=columns)
                download.append(time.perf_counter() - started)
                started = time.perf_counter()
                pq.read_table(local, columns=columns)
                warm.append(time.perf_counter() - started)
            figures[f"{label}, ranged reads"] = statistics.median(ranged)
            figures[f"{label}, mirror cold (download + read)"] = statistics.median(download)
            figures[f"{label}, mirror warm (local read)"] = statistics.median(warm)
    figures["size MB"] = client.head_object(Bucket=BUCKET, Key=key)["ContentLength"] / 1e6
    figures["columns"] = len(every)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000, help="train rows")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each kind (median)")
    options = parser.parse_args()
    load_before = " ".join(f"{value:.1f}" for value in os.getloadavg())
    server, s3_env = moto()
    env = environment(s3_env)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-") as work:
            local = bake(Path(work) / "local")
            write_competition(local / "data" / "raw", options.rows, options.rows // 5, seed=0)
            use_cpu_features(local)
            cfg = local / "luigi.cfg"
            cfg.write_text(cfg.read_text().replace("n_folds = 5", "n_folds = 2"))
            machines = []
            for name in ("machine-a", "machine-b"):
                machine = Path(shutil.copytree(local, Path(work) / name / local.name, symlinks=True))
                cfg = machine / "luigi.cfg"
                cfg.write_text(cfg.read_text().replace("cache = data/cache\n", f"cache = s3://{BUCKET}/{PREFIX}\n", 1))
                machines.append(machine)
            for machine in machines:
                run(make(machine, "split"), env)
            runs: dict[int, list[float]] = {1: [], 2: []}
            cpu: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
            for _ in range(options.repeat):
                for count in (1, 2):
                    forget_features(machines, env)
                    with scheduler(machines[0]) as port:
                        seconds, s3_cpu, workers_cpu = features_seconds(machines[:count], port, env)
                    runs[count].append(seconds)
                    cpu[count].append((s3_cpu, workers_cpu))
            forget_features(machines, env)
            with scheduler(machines[0]) as port:
                pickup = pickup_seconds(machines, port, env)
            run(make(local, "all"), env)
            run(make(machines[0], "all"), env)
            local_seconds = up_to_date_seconds(local, env, options.repeat)
            s3_seconds = up_to_date_seconds(machines[0], env, options.repeat)
            reads = read_seconds(env, options.repeat)
    finally:
        server.stop()
    one, two = statistics.median(runs[1]), statistics.median(runs[2])
    print(f"{options.rows:,} train rows, {os.cpu_count()} cores, load average before: {load_before}\n")
    print("| figure | measured | baseline | ratio | goal | met |")
    print("|---|---|---|---|---|---|")
    print(
        f"| make features through luigid, cache on S3 (moto), 4 CPU-bound features, 2 machines' workers "
        f"| {two:.1f} s | {one:.1f} s (1 worker) | {one / two:.2f}x | at least 1.6x faster | "
        f"{'yes' if one / two >= 1.6 else 'NO'} |"
    )
    print(
        f"| up-to-date make all, cache on S3 (moto) | {s3_seconds:.2f} s | {local_seconds:.2f} s (local cache) "
        f"| {s3_seconds / local_seconds:.2f}x the time | | |"
    )
    print(f"| a killed worker's feature started again by the other machine's | {pickup:.1f} s | | | within 60 s "
          f"| {'yes' if pickup <= 60 else 'NO'} |")  # fmt: skip
    shown = {count: ", ".join(f"{s:.1f}" for s in seconds) for count, seconds in runs.items()}
    print(f"\nruns (s): 1 worker {shown[1]}; 2 workers {shown[2]}")
    for count in (1, 2):
        s3_cpu, workers_cpu = (statistics.median(part) for part in zip(*cpu[count], strict=True))
        print(f"CPU s per run, {count} worker(s): workers {workers_cpu:.1f}, moto's S3 server {s3_cpu:.1f}")
    size, columns = reads.pop("size MB"), reads.pop("columns")
    print(f"\nReading Ingest's train table on S3 ({size:.1f} MB, {columns} columns), medians:")
    for label, seconds in reads.items():
        print(f"  {label}: {seconds:.3f} s")
    for label in ("2 columns", "every column"):
        ranged = reads[f"{label}, ranged reads"]
        mirror = reads[f"{label}, mirror cold (download + read)"] + 4 * reads[f"{label}, mirror warm (local read)"]
        print(f"  {label} read 5 times: ranged {5 * ranged:.2f} s, mirror {mirror:.2f} s")


if __name__ == "__main__":
    main()
