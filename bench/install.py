"""Benchmark: the first `make all` of a freshly baked project, from nothing (no .venv) to the demo
submission, with the lock installed by uv and by pip, in one run.

Bakes the default project once per installer and times `make install` and then `make all` (the first
`make all` runs exactly these two). uv's run is what a fresh machine gets with INSTALLER=auto: uv is not
on PATH (UV is emptied), so `make install` first installs the uv the lock pins into the new .venv from
the registry, then syncs the lock with it. pip's run is INSTALLER=pip. --cold gives each run empty
package caches (everything downloaded); without it the caches are as they are (as for a second project
on this machine: run once to fill them). Prints both times, their install parts and the ratio pip / uv
(goal: under 40 s with uv on 2 cores), and the load average before and after.
Usage: python bench/install.py [--cold]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]
GOAL_S = 40.0


def clean_environment(caches: Path | None) -> dict[str, str]:
    """The shell's environment without this process's virtualenv, Luigi or make settings."""
    unset = ("VIRTUAL_ENV", "PYTHONPATH", "LUIGI_CONFIG_PATH", "MAKEFLAGS")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    if caches is not None:
        env.update(UV_CACHE_DIR=str(caches / "uv"), PIP_CACHE_DIR=str(caches / "pip"))
    return env


def timed_make(project: Path, target: str, env: dict[str, str], **variables: str) -> tuple[float, str]:
    args = ["make", "--no-print-directory", "-C", str(project), target, *(f"{k}={v}" for k, v in variables.items())]
    start = time.perf_counter()
    result = subprocess.run(args, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"ERROR: make {target} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed, result.stdout


def first_make_all(folder: Path, installer: str, cold: bool) -> tuple[float, float, str]:
    """(install seconds, pipeline seconds, the install line) of a fresh bake's first make all."""
    project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(folder), default_config=True))
    env = clean_environment(folder / "caches" if cold else None)
    variables = {"INSTALLER": installer, "UV": ""}
    install, out = timed_make(project, "install", env, **variables)
    pipeline, out_all = timed_make(project, "all", env, **variables)
    if "Submission: " not in out_all:
        sys.exit(f"ERROR: make all printed no submission:\n{out_all}")
    used = next((line for line in out.splitlines() if line.startswith("Installing ")), "?")
    return install, pipeline, used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="empty package caches for each run")
    cold = parser.parse_args().cold
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-install-") as tmp:
        results = {name: first_make_all(Path(tmp) / name, name, cold) for name in ("auto", "pip")}
    load_after = os.getloadavg()
    caches = "empty (--cold)" if cold else "as they were"
    print(f"First make all of a fresh bake, no .venv, package caches {caches}, {os.cpu_count()} cores")
    for name, (install, pipeline, used) in results.items():
        parts = f"make install {install:5.1f} s, pipeline {pipeline:5.1f} s"
        print(f"  INSTALLER={name:<5} {install + pipeline:6.1f} s  ({parts})  [{used}]")
    uv_total, pip_total = (sum(results[name][:2]) for name in ("auto", "pip"))
    print(f"  ratio pip / uv: {pip_total / uv_total:.2f}x total, {results['pip'][0] / results['auto'][0]:.2f}x install")
    print(f"  goal: uv under {GOAL_S:.0f} s: {'met' if uv_total < GOAL_S else 'not met'}")
    print(f"  load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")


if __name__ == "__main__":
    main()
