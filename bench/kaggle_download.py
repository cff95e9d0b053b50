"""Benchmark: `make download` against a plain `kaggle competitions download`, in one run.

Bakes a project with a competition, writes a competition archive of about MB megabytes (CSV
files of random hex fields, deflated as Kaggle's archives are, so unpacking costs what it costs
on real data), serves it from the baked project's fake Kaggle API on 127.0.0.1 (tests/kaggle_fake.py),
then downloads it REPEAT times each way, alternating, first as fast as the loopback goes, then
with the fake sending at RATE MB/s (a fast home or cloud connection to Kaggle):
- `make download` from an empty data/raw: Luigi's start, the client's download into a temporary
  folder, the zip checked and unpacked, the files moved into place, the record written;
- `kaggle competitions download -c <slug> -p <folder>`: the official CLI, the archive alone,
  as a user would run it (and, for comparison, with `--unzip`).
Prints the median times, the ratio to the plain download (goal: at most 1.10) and the load average.
Usage: python bench/kaggle_download.py [MB] [REPEAT] [RATE]   (default 100 MB, 3, 50 MB/s)
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]
SLUG = "bench-comp"
MB = 1 << 20


def csv_block(rows: int) -> bytes:
    """CSV rows of random hex fields: text that deflate shrinks to about 55%, as it does numbers."""
    data = os.urandom(rows * 16).hex()
    lines = (f"{i},{data[i * 32 : i * 32 + 20]},{data[i * 32 + 20 : i * 32 + 31]},{i % 2}\n" for i in range(rows))
    return "".join(lines).encode()


def write_archive(path: Path, megabytes: int) -> int:
    """A competition zip of about `megabytes` (train, test, sample submission); its size."""
    block = csv_block(20000)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as bundle:
        for name, share in (("train.csv", 0.75), ("test.csv", 0.25)):
            with bundle.open(name, "w") as out:
                out.write(b"id,a,b,target\n")
                written = 0
                while written < share * megabytes * MB / 0.55:
                    out.write(block)
                    written += len(block)
        bundle.writestr("sample_submission.csv", b"id,target\n" + b"".join(b"%d,0.5\n" % i for i in range(100000)))
    return path.stat().st_size


def load_fake(project: Path):
    spec = importlib.util.spec_from_file_location("bench_kaggle_fake", project / "tests" / "kaggle_fake.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds


def measure(commands: dict[str, list[str]], env: dict[str, str], raw: Path, plain: Path, repeat: int) -> dict:
    """Median seconds of each command, run in turn REPEAT times, each from an empty folder."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, command in commands.items():
            shutil.rmtree(raw if name == "make" else plain, ignore_errors=True)
            (raw if name == "make" else plain).mkdir()
            times[name].append(timed(command, env))
    assert (raw / "train.csv").stat().st_size == (plain / "train.csv").stat().st_size
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    megabytes = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    rate = float(sys.argv[3]) if len(sys.argv) > 3 else 50.0
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        project = Path(
            cookiecutter(
                str(TEMPLATE),
                no_input=True,
                output_dir=str(root / "bake"),
                default_config=True,
                extra_context={"competition": SLUG},
            )
        )
        size = write_archive(root / "archive.zip", megabytes)
        (root / "home").mkdir()
        fake_kaggle = load_fake(project)
        with fake_kaggle.running() as fake:
            fake.competition(SLUG, root / "archive.zip")
            overrides = fake.environment(root / "home")
            env = {k: v for k, v in {**os.environ, **overrides}.items() if v is not None}
            env.pop("MAKEFLAGS", None)
            raw, plain = project / "data" / "raw", root / "plain"
            cli = [sys.executable, "-m", "kaggle", "competitions", "download", "-c", SLUG, "-p", str(plain)]
            commands = {
                "make": ["make", "--no-print-directory", "-C", str(project), "download", f"VENV={sys.prefix}"],
                "cli": cli,
                "unzip": [*cli, "--unzip"],
            }
            fast = measure(commands, env, raw, plain, repeat)
            fake.rate = rate * MB
            limited = measure(commands, env, raw, plain, repeat)
    load_after = os.getloadavg()
    print(f"cores: {os.cpu_count()}, archive: {size / MB:.1f} MB from the fake Kaggle API, median of {repeat}")
    print(f"{'':<32} {'loopback':>18}  {f'at {rate:g} MB/s':>18}")
    rows = [
        ("make download", "make"),
        ("kaggle competitions download", "cli"),
        ("  with --unzip (not compared)", "unzip"),
    ]
    for name, key in rows:
        cells = [f"{run[key]:6.3f} s ({size / MB / run[key]:5.1f} MB/s)" for run in (fast, limited)]
        print(f"{name:<32} {cells[0]:>18}  {cells[1]:>18}")
    ratios = [f"{run['make'] / run['cli']:.2f}x" for run in (fast, limited)]
    print(f"{'time ratio (goal: at most 1.10)':<32} {ratios[0]:>18}  {ratios[1]:>18}")
    print(f"load average before, after: {load_before[0]:.2f}, {load_after[0]:.2f}")


if __name__ == "__main__":
    main()
