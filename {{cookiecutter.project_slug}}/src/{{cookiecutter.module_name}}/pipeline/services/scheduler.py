"""`make scheduler` / `make scheduler-stop`: Luigi's central scheduler (luigid) for this project.

luigid runs in the background with its pid file, log and state file in `.luigid/` (one set per
port, so two schedulers never share them), bound to 127.0.0.1 unless an address is given:
luigid has no authentication, so other machines reach it through an SSH tunnel (README:
"Several machines"). Its settings are luigi.cfg's [scheduler] section.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ... import PROJECT_ROOT
from ..resources.processes import pid_alive

FOLDER = PROJECT_ROOT / ".luigid"
START_SECONDS = 30.0
STOP_SECONDS = 10.0
LUIGID = "import sys; from luigi.cmdline import luigid; luigid(sys.argv[1:])"


def _files(port: int) -> tuple[Path, Path, Path]:
    """The pid file, log and state file of the scheduler on `port`."""
    return FOLDER / f"luigid-{port}.pid", FOLDER / f"luigid-{port}.log", FOLDER / f"state-{port}.pickle"


def _running(pid_file: Path) -> int | None:
    """The pid of the scheduler the pid file names, if that process is alive."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def _answers(address: str, port: int) -> bool:
    host = "127.0.0.1" if address in ("", "0.0.0.0") else "::1" if address == "::" else address
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"


def start(port: int, address: str) -> int:
    pid_file, log, state = _files(port)
    url = f"http://{'localhost' if address == '127.0.0.1' else address}:{port}"
    pid = _running(pid_file)
    if pid is not None:
        print(f"luigid already runs on port {port} (pid {pid}): {url}")
        return 0
    if _answers(address, port):
        taken = f"ERROR: port {port} of {address} is taken by another program (SCHEDULER_PORT= picks another)"
        print(taken, file=sys.stderr)
        return 1
    FOLDER.mkdir(exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", LUIGID, "--address", address, "--port", str(port), "--state-path", str(state)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
            start_new_session=True,  # outlives make, and Ctrl-C in this terminal does not reach it
        )
    deadline = time.monotonic() + START_SECONDS
    while process.poll() is None and not _answers(address, port) and time.monotonic() < deadline:
        time.sleep(0.1)
    if process.poll() is not None or not _answers(address, port):
        process.kill()
        print(f"ERROR: luigid did not start on {address}:{port}: {_last_line(log)} (log: {log})", file=sys.stderr)
        return 1
    pid_file.write_text(f"{process.pid}\n")
    print(f"luigid runs on {address}:{port} (pid {process.pid}, log {log.relative_to(PROJECT_ROOT)})")
    print(f"visualiser: {url}/static/visualiser/index.html")
    print(f"workers: make all SCHEDULER_HOST=<this machine>:{port}; stop: make scheduler-stop SCHEDULER_PORT={port}")
    return 0


def stop(port: int) -> int:
    pid_file, _, _ = _files(port)
    pid = _running(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        print(f"no luigid of this project runs on port {port}")
        return 0
    os.kill(pid, signal.SIGTERM)  # luigid saves its state file on SIGTERM
    deadline = time.monotonic() + STOP_SECONDS
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    print(f"luigid on port {port} stopped (pid {pid})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {__name__}", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--address", default="127.0.0.1")
    args = parser.parse_args(argv)
    return start(args.port, args.address) if args.action == "start" else stop(args.port)


if __name__ == "__main__":
    sys.exit(main())
