"""Several workers through Luigi's central scheduler: `make scheduler`, `make worker`,
`make scheduler-stop` in a baked project, with a real luigid on a free port of 127.0.0.1."""

from __future__ import annotations

import configparser
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import make

SLOW_FEATURES = '''
"""Four features that each take a few seconds, so that two workers share them."""

import time

from ..pipeline import Feature


class _Slow(Feature):
    def columns(self):
        return []

    def make(self, df):
        import pandas as pd

        time.sleep(4)
        return pd.DataFrame({type(self).__name__.lower(): float(len(type(self).__name__))}, index=df.index)


class SlowA(_Slow):
    pass


class SlowB(_Slow):
    pass


class SlowC(_Slow):
    pass


class SlowD(_Slow):
    pass
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> set[str]:
    """The local addresses (hex, as /proc/net gives them) listening on `port`, IPv4 and IPv6."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.rpartition(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def running(pid: int) -> bool:
    """Whether a process runs (a zombie that init has not reaped yet does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def done_lines(output: str) -> list[str]:
    return [line.split()[1] for line in output.splitlines() if line.startswith("done ")]


@pytest.fixture(scope="module")
def project(bake, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with four slow features, two folds and a small model; luigid's delays shortened
    so that a dead worker's task comes back within seconds."""
    project = bake(tmp_path_factory.mktemp("scheduler"))
    features = project / "src" / "kaggle_competition" / "features"
    (features / "slow.py").write_text(SLOW_FEATURES)
    init = features / "__init__.py"
    text = init.read_text().replace("FEATURES = [", "from .slow import SlowA, SlowB, SlowC, SlowD\n\nFEATURES = [")
    init.write_text(
        text.replace("    LastVisit,\n]", "    LastVisit,\n    SlowA,\n    SlowB,\n    SlowC,\n    SlowD,\n]")
    )
    cfg = project / "luigi.cfg"
    text = cfg.read_text().replace("n_folds = 5", "n_folds = 2")
    text = text.replace('model_params = {"max_iter": 200, "learning_rate": 0.05}', 'model_params = {"max_iter": 20}')
    text = text.replace("worker_disconnect_delay = 20", "worker_disconnect_delay = 3").replace(
        "retry_delay = 10", "retry_delay = 1"
    )
    cfg.write_text(text)
    make(project, "data")
    return project


def start_worker(project: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("LUIGI_CONFIG_PATH", "PYTHONPATH", "MAKEFLAGS")}
    return subprocess.Popen(
        ["make", "--no-print-directory", "-C", str(project), "worker", f"VENV={sys.prefix}", "WORKERS=1",
         f"SCHEDULER_HOST=localhost:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True,
    )  # fmt: skip


def kill_the_first_mid_feature(first: subprocess.Popen, second: subprocess.Popen) -> tuple[str, str]:
    """Two workers of one luigid started together: kill -9 the first a second into a slow feature
    and let the second finish. Checks that the second ran that feature and Submission, had its own
    share, and that no task ran twice; returns the killed feature and the second's output."""
    outputs = {}
    reader = threading.Thread(target=lambda: outputs.update(second=second.communicate(timeout=300)[0]))
    reader.start()
    before_kill, killed = [], None
    for line in first.stdout:
        before_kill.append(line)
        if line.startswith("run   Slow"):
            killed = line.split()[1]
            time.sleep(1)
            os.killpg(first.pid, signal.SIGKILL)
            break
    first.wait(timeout=60)
    reader.join(timeout=320)
    assert killed, "".join(before_kill)
    assert second.returncode == 0, outputs["second"]
    by_first, by_second = done_lines("".join(before_kill)), done_lines(outputs["second"])
    assert killed not in by_first and killed in by_second and "Submission" in by_second
    assert not set(by_first) & set(by_second)  # no task ran twice
    assert {t for t in by_second if t.startswith("Slow")} - {killed}  # the second worker had its own share
    return killed, outputs["second"]


def test_the_shipped_settings_hand_a_dead_worker_s_task_on_within_a_minute(bake, tmp_path: Path):
    cfg = configparser.ConfigParser()
    cfg.read(bake(tmp_path) / "luigi.cfg")
    scheduler = cfg["scheduler"]
    assert scheduler.getfloat("worker_disconnect_delay") + scheduler.getfloat("retry_delay") <= 60
    assert scheduler.getboolean("prune_on_get_work")  # else luigid looks for dead workers once a minute
    assert not scheduler.getboolean("record_task_history")


def test_scheduler_listens_on_127_0_0_1_only_and_stops_without_a_trace(project: Path):
    port = free_port()
    started = make(project, "scheduler", SCHEDULER_PORT=str(port))
    assert f"127.0.0.1:{port}" in started.stdout and "/static/visualiser/index.html" in started.stdout
    pid = int((project / ".luigid" / f"luigid-{port}.pid").read_text())
    try:
        assert listening(port) == {"0100007F"}  # 127.0.0.1, and nothing on IPv6 or other addresses
        again = make(project, "scheduler", SCHEDULER_PORT=str(port))
        assert f"already runs on port {port} (pid {pid})" in again.stdout
    finally:
        stopped = make(project, "scheduler-stop", SCHEDULER_PORT=str(port))
    assert f"stopped (pid {pid})" in stopped.stdout
    assert not running(pid) and listening(port) == set()
    assert not (project / ".luigid" / f"luigid-{port}.pid").exists()
    assert "no luigid" in make(project, "scheduler-stop", SCHEDULER_PORT=str(port)).stdout


def test_a_port_in_use_is_one_error_line(project: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = make(project, "scheduler", SCHEDULER_PORT=str(port), check=False)
    assert result.returncode != 0
    assert result.stderr.splitlines()[0] == (
        f"ERROR: port {port} of 127.0.0.1 is taken by another program (SCHEDULER_PORT= picks another)"
    )


def test_make_worker_without_a_scheduler_host_says_so(project: Path):
    result = make(project, "worker", check=False)
    assert result.returncode != 0 and "ERROR: make worker needs SCHEDULER_HOST=host[:port]" in result.stderr


def test_two_workers_share_the_pipeline_and_finish_a_killed_worker_s_task(project: Path, tmp_path: Path):
    """Both workers start together; the first is killed (kill -9) in the middle of a slow feature;
    the second runs that feature again once luigid gives up on the first, and the rest."""
    port = free_port()
    make(project, "scheduler", SCHEDULER_PORT=str(port))
    try:
        killed, second = kill_the_first_mid_feature(start_worker(project, port), start_worker(project, port))
    finally:
        make(project, "scheduler-stop", SCHEDULER_PORT=str(port))
    assert len(list((project / "data" / "cache" / killed).glob("[!.]*/manifest.json"))) == 1
    assert " (0.0 s)" not in second.split(f"done  {killed}")[1].splitlines()[0]  # ran, not found done

    # The same submission as a run with the local scheduler, in a copy without the cache
    local = tmp_path / "local"
    skip = {project: {"submissions", "runs", ".luigid"}, project / "data": {"cache"}}
    shutil.copytree(project, local, ignore=lambda folder, names: skip.get(Path(folder), set()) & set(names))
    (local / "submissions").mkdir()
    (local / "runs").mkdir()
    make(local, "all", WORKERS="2")
    newest = lambda folder: max((folder / "submissions").glob("*.csv"), key=lambda p: p.stat().st_mtime)  # noqa: E731
    assert newest(local).read_bytes() == newest(project).read_bytes()
