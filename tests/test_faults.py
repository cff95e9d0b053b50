"""Faults injected into a baked project's `make all`: SIGKILL at moments spread over a run, Ctrl-C,
two runs at once, cache files damaged afterwards, a disk that refuses writes. After each, no
result looks done that is not, and the next `make all` gives the reference submission's bytes.

One bake (the default binary demo, a run of about ten seconds) serves every test, copied per test.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import make, tasks_run

KILL_AT = (0.1, 0.35, 0.6, 0.85)  # fractions of a whole run: Ingest, features, folds, the end


@dataclass(frozen=True)
class Reference:
    project: Path
    submission: bytes
    seconds: float

    def fresh(self, to: Path) -> Path:
        """A copy of the project with its raw data but no results, records or submissions."""
        copy = Path(shutil.copytree(self.project, to / self.project.name, symlinks=True))
        for name in ("data/cache", "submissions", "runs"):
            shutil.rmtree(copy / name, ignore_errors=True)
            (copy / name).mkdir(parents=True)
        return copy

    def built(self, to: Path) -> Path:
        """A copy of the project after its first run, caches included."""
        return Path(shutil.copytree(self.project, to / self.project.name, symlinks=True))


def submission_bytes(project: Path, result: subprocess.CompletedProcess) -> bytes:
    [line] = [line for line in result.stdout.splitlines() if line.startswith("Submission: ")]
    return (project / line.removeprefix("Submission: ")).read_bytes()


@pytest.fixture(scope="module")
def reference(bake, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    project = bake(tmp_path_factory.mktemp("faults"))
    make(project, "data")
    started = time.perf_counter()
    first = make(project, "all")
    return Reference(project, submission_bytes(project, first), time.perf_counter() - started)


# Starts a program with SIGINT at its default, as a terminal starts a command. A program started with
# SIGINT ignored (a background job of a non-interactive shell, nohup, some CI runners) passes the ignore on
# to every child, and Python then installs no KeyboardInterrupt handler: Ctrl-C would reach nobody.
AS_FROM_A_TERMINAL = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])"
)


def start_all(project: Path) -> subprocess.Popen:
    """`make all` in a session of its own, so that a signal reaches make, Luigi and its workers, with
    SIGINT at its default whatever this test process inherited."""
    env = {k: v for k, v in os.environ.items() if k not in ("LUIGI_CONFIG_PATH", "PYTHONPATH", "MAKEFLAGS")}
    make_all = ["make", "--no-print-directory", "-C", str(project), "all", f"VENV={sys.prefix}"]
    return subprocess.Popen(
        [sys.executable, "-c", AS_FROM_A_TERMINAL, *make_all],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


def assert_done_means_whole(project: Path) -> None:
    """Every result folder whose name says done (no leading dot) holds a manifest that parses,
    and every file the manifest lists has its size and sha256."""
    cache = project / "data" / "cache"
    for folder in cache.glob("[!.]*/[!.]*"):
        if not folder.is_dir():
            continue
        manifest = json.loads((folder / "manifest.json").read_text())
        for name, entry in manifest["files"].items():
            data = (folder / name).read_bytes()
            assert len(data) == entry["bytes"], f"{folder}/{name}: size differs from the manifest"
            assert hashlib.sha256(data).hexdigest() == entry["sha256"], f"{folder}/{name}: sha256 differs"


def test_sigkill_at_moments_spread_over_a_run_leaves_nothing_that_looks_done(reference: Reference, tmp_path: Path):
    """`kill -9` of make, Luigi and its workers at several moments of a run leaves only whole
    results, and the next `make all` gives the reference submission, byte for byte."""
    for fraction in KILL_AT:
        project = reference.fresh(tmp_path / f"kill-{fraction}")
        with start_all(project) as running:
            time.sleep(fraction * reference.seconds)
            os.killpg(running.pid, signal.SIGKILL)
            running.communicate()
        assert_done_means_whole(project)
        again = make(project, "all")
        assert submission_bytes(project, again) == reference.submission, f"killed at {fraction:.0%} of a run"


def test_ctrl_c_mid_run_stops_and_the_next_run_completes(reference: Reference, tmp_path: Path):
    """Ctrl-C (SIGINT to the whole session) stops `make all` with a non-zero exit and leaves only
    whole results; the next run gives the reference submission."""
    project = reference.fresh(tmp_path)
    with start_all(project) as running:
        # Mid-run whatever the machine's speed: as the first fold starts its fit, which takes seconds
        # (Train itself only gathers the folds' results, and may be over in less than a second).
        seen = []
        for line in running.stdout:
            seen.append(line)
            if line.startswith("run   TrainFold"):
                break
        os.killpg(running.pid, signal.SIGINT)
        out, err = running.communicate(timeout=120)
    assert running.returncode != 0, "".join(seen) + out + err
    assert_done_means_whole(project)
    assert submission_bytes(project, make(project, "all")) == reference.submission


def test_two_make_all_at_once_give_the_reference_submission(reference: Reference, tmp_path: Path):
    """Two `make all` started together in one project: the one that runs gives the reference
    submission, the other stops without harm, and a third run has nothing left to do."""
    project = reference.fresh(tmp_path)
    with start_all(project) as first, start_all(project) as second:
        outputs = [first.communicate(timeout=300), second.communicate(timeout=300)]
    codes = [first.returncode, second.returncode]
    assert 0 in codes, outputs
    assert "Traceback" not in "".join(err for _, err in outputs)
    assert_done_means_whole(project)
    third = make(project, "all")
    assert tasks_run(third) == []
    assert submission_bytes(project, third) == reference.submission


def damage_truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def damage_same_size(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-200:-8] = bytes(b ^ 0x5A for b in data[-200:-8])  # the footer: pyarrow cannot parse it
    path.write_bytes(bytes(data))


def feature_file(project: Path, task: str = "NumericColumns") -> Path:
    [path] = (project / "data" / "cache" / task).glob("[!.]*/train.parquet")
    return path


def test_a_truncated_feature_file_is_set_aside_and_rebuilt(reference: Reference, tmp_path: Path):
    """A Parquet file cut short in a feature result: the next `make all` warns in one line, moves
    the result aside, builds that feature again and gives the reference submission; `make gc`
    lists the damaged copy and CONFIRM=1 deletes it."""
    project = reference.built(tmp_path)
    path = feature_file(project)
    damage_truncate(path)
    result = make(project, "all")
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING: ")]
    assert len(warnings) == 1 and path.parent.name in warnings[0] and ".damaged-" in warnings[0], result.stderr
    assert "NumericColumns" in tasks_run(result) and "Ingest" not in tasks_run(result)
    assert "TrainFold" not in tasks_run(result)  # the fit is kept: Train's result was already there
    assert "Traceback" not in result.stderr
    assert submission_bytes(project, result) == reference.submission
    assert_done_means_whole(project)
    assert make(project, "verify").returncode == 0

    listed = make(project, "gc")
    assert f"NumericColumns/.damaged-{path.parent.name}-" in listed.stdout
    make(project, "gc", CONFIRM="1")
    assert list((project / "data" / "cache" / "NumericColumns").glob(".damaged-*")) == []


def test_a_file_altered_at_the_same_size_is_found_by_verify_and_rebuilt_after_fix(reference: Reference, tmp_path: Path):
    """A same-size change passes the size check; `make verify` names the result and exits non-zero;
    a run that reads it stops with one line naming the folder and `make verify`, no traceback;
    `make verify FIX=1` moves it aside and the next `make all` gives the reference submission."""
    project = reference.built(tmp_path)
    path = feature_file(project, "CategoryCodes")
    damage_same_size(path)
    found = make(project, "verify", check=False)
    assert found.returncode != 0
    damaged = [line for line in found.stdout.splitlines() if line.startswith("damaged ")]
    assert damaged == [f"damaged  CategoryCodes/{path.parent.name}: train.parquet does not match its manifest's sha256"]
    assert "1 damaged" in found.stdout.splitlines()[-1]

    shutil.rmtree(project / "data" / "cache" / "Train")  # Train must read the features again
    read = make(project, "train", check=False)
    assert read.returncode != 0 and "Traceback" not in read.stderr
    errors = {line for line in read.stderr.splitlines() if line.startswith("ERROR: ")}
    assert len(errors) == 1, read.stderr
    assert path.parent.name in errors.pop()

    make(project, "verify", check=False, FIX="1")
    assert not path.parent.exists()
    assert submission_bytes(project, make(project, "all")) == reference.submission
    assert make(project, "verify", ALL="1").returncode == 0


def test_a_manifest_that_is_not_json_or_a_missing_file_is_rebuilt(reference: Reference, tmp_path: Path):
    """A garbled manifest and a missing file are not done: set aside and built again, no traceback."""
    project = reference.built(tmp_path)
    numeric, dates = feature_file(project), feature_file(project, "DateParts")
    (numeric.parent / "manifest.json").write_text("{ not json")
    dates.unlink()
    result = make(project, "all")
    assert {"NumericColumns", "DateParts"} <= set(tasks_run(result))
    assert "Traceback" not in result.stderr
    assert submission_bytes(project, result) == reference.submission
    assert_done_means_whole(project)


def test_a_full_disk_is_one_line_and_the_next_run_completes(reference: Reference, tmp_path: Path):
    """With writes refused (a file-size limit, `ulimit -f`: EFBIG, no root needed), `make all`
    stops with one ERROR line per task that could not write (Ingest and Table run side by side),
    naming the task and the path, nothing looks done; once writes are allowed again the next run
    gives the reference submission."""
    project = reference.fresh(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("LUIGI_CONFIG_PATH", "PYTHONPATH", "MAKEFLAGS")}
    limited = subprocess.run(
        ["bash", "-c", f'ulimit -f 48 && make --no-print-directory -C "{project}" all VENV="{sys.prefix}"'],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert limited.returncode != 0
    errors = [line for line in limited.stderr.splitlines() if line.startswith("ERROR: ")]
    tasks = [line.split(":")[1].strip() for line in errors]
    assert errors and len(set(tasks)) == len(tasks) and set(tasks) <= {"Ingest", "Table", "Split"}, limited.stderr
    for line in errors:
        assert "File too large" in line and "data/cache/" in line, line
    assert "Traceback" not in limited.stderr
    assert_done_means_whole(project)
    assert list((project / "submissions").iterdir()) == []
    assert submission_bytes(project, make(project, "all")) == reference.submission
