"""Benchmark: the Fetch task's download against plain boto3 `download_file`, in one run.

Starts moto's S3 server on 127.0.0.1, uploads one object of MB megabytes (random bytes, a
multipart upload as `aws s3 cp` makes), bakes a project whose [s3] files lists it, then
downloads it REPEAT times each way, alternating: `Fetch(refresh=True).run()` (HEAD, If-Match
ranged GETs, checksum while writing, atomic rename, state file) and `download_file` from a new
boto3 client (what `aws s3 cp` does; Fetch makes a new client too). Prints the median
throughputs and the ratio of times (goal: Fetch costs under 10% more).
Usage: python bench/fetch.py [MB] [REPEAT]   (MB also from BENCH_FETCH_MB; default 200, 3)
"""

from __future__ import annotations

import importlib
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]
BUCKET, PREFIX, NAME = "bench-data", "bench", "big.bin"


def fake_aws(home: Path, endpoint: str) -> None:
    """Credentials for the local server only; the user's ~/.aws files are never read."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL_S3=endpoint,
        AWS_CONFIG_FILE=str(home / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )


def bake(folder: Path) -> tuple[Path, str]:
    """A project fetching NAME from the bench bucket; (its folder, its package name)."""
    project = Path(
        cookiecutter(
            str(TEMPLATE),
            no_input=True,
            output_dir=str(folder),
            default_config=True,
            extra_context={"s3_bucket": BUCKET, "s3_prefix": PREFIX},
        )
    )
    config = project / "luigi.cfg"
    lines = [f'files = ["{NAME}"]' if line.startswith("files = ") else line for line in config.read_text().splitlines()]
    config.write_text("\n".join(lines) + "\n")
    return project, project.name.replace("-", "_")


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    megabytes = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("BENCH_FETCH_MB", "200"))
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            host, port = server.get_host_and_port()
            fake_aws(Path(tmp), f"http://{host}:{port}")
            project, package = bake(Path(tmp) / "bake")
            os.environ["LUIGI_CONFIG_PATH"] = str(project / "luigi.cfg")
            sys.path.insert(0, str(project / "src"))
            fetch = importlib.import_module(f"{package}.pipeline.data.fetch")

            import boto3

            client = boto3.client("s3")
            client.create_bucket(Bucket=BUCKET)
            source = Path(tmp) / NAME
            with open(source, "wb") as out:
                for _ in range(megabytes):
                    out.write(os.urandom(1 << 20))
            client.upload_file(str(source), BUCKET, f"{PREFIX}/{NAME}")
            source.unlink()

            raw = project / "data" / "raw"
            plain_copy = raw / "plain.bin"

            def with_fetch() -> None:
                (raw / NAME).unlink(missing_ok=True)
                (raw / fetch.STATE).unlink(missing_ok=True)
                fetch.Fetch(refresh=True).run()

            def with_boto3() -> None:  # a new client each time, as Fetch and `aws s3 cp` make one
                plain_copy.unlink(missing_ok=True)
                boto3.session.Session().client("s3").download_file(BUCKET, f"{PREFIX}/{NAME}", str(plain_copy))

            fetch_times, plain_times = [], []
            for _ in range(repeat):
                fetch_times.append(timed(with_fetch))
                plain_times.append(timed(with_boto3))
            assert (raw / NAME).read_bytes() == plain_copy.read_bytes()
    finally:
        server.stop()

    task, plain = statistics.median(fetch_times), statistics.median(plain_times)
    print(f"cores: {os.cpu_count()}, object: {megabytes} MB on moto's server, median of {repeat} downloads")
    rows = [
        ("Fetch task", f"{megabytes / task:8.1f} MB/s  ({task:.3f} s)"),
        ("boto3 download_file", f"{megabytes / plain:8.1f} MB/s  ({plain:.3f} s)"),
        ("time ratio (goal: under 1.10)", f"{task / plain:8.2f}x"),
    ]
    for name, value in rows:
        print(f"{name:<30} {value}")


if __name__ == "__main__":
    main()
