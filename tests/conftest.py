"""Shared helpers: bake the template with cookiecutter, run make in a baked project.

Every baked project runs in this test environment (VENV=sys.prefix): it holds the packages a
project needs, so no test creates an environment of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]
# Baked projects fit small data: one thread per fit, as their own tests do (see their conftest.py).
# With more, OpenMP's threads spin-wait for each other on a busy machine: folds ran ten times slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
DEFAULTS = json.loads((TEMPLATE / "cookiecutter.json").read_text())
PROBLEM_TYPES = DEFAULTS["problem_type"]
# The generated project's test files, shared out among the bakes that run its `make test` (the suite
# takes minutes a run). Those whose subject does not depend on the problem type run in the
# multiclass bake alone (tests/test_pipeline.py); those whose tiny competitions of several tables set
# their own problem (keys, tables, SQL, metrics over groups, file formats), in the binary bake alone
# (tests/test_cruft.py, after a template update and the user's own features and models).
SAME_FOR_EVERY_PROBLEM = ("durable", "environment", "memory", "threads", "fetch", "kaggle", "runs")
BINARY_ONLY = ("tables", "formats")


def left_out(parts: tuple[str, ...]) -> dict[str, str]:
    """The environment in which the generated project's `make test` leaves out tests/test_<part>.py."""
    return {"PYTEST_ADDOPTS": " ".join(f"--ignore=tests/test_{part}.py" for part in parts)}


@pytest.fixture(scope="session")
def cookiecutter_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user config that keeps cookiecutter's replay files out of the home folder."""
    home = tmp_path_factory.mktemp("cookiecutter-home")
    config = home / "config.yaml"
    config.write_text(f"cookiecutters_dir: {home / 'templates'}\nreplay_dir: {home / 'replay'}\n")
    return config


@pytest.fixture(scope="session")
def bake(cookiecutter_config: Path):
    """bake(output_dir, **answers) -> the generated project's folder."""

    def _bake(output_dir: Path, **answers: str) -> Path:
        output_dir.mkdir(parents=True, exist_ok=True)
        return Path(
            cookiecutter(
                str(TEMPLATE),
                no_input=True,
                extra_context=answers,
                output_dir=str(output_dir),
                config_file=str(cookiecutter_config),
            )
        )

    return _bake


def run_cookiecutter_cli(output_dir: Path, config: Path, *answers: str, stdin: str | None = None):
    """The cookiecutter command line, as a user runs it (no_input unless stdin is given)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "cookiecutter", str(TEMPLATE), "-o", str(output_dir), "--config-file", str(config)]
    if stdin is None:
        args.append("--no-input")
    return subprocess.run([*args, *answers], input=stdin, capture_output=True, text=True, timeout=120)


def make(
    project: Path, *targets: str, check: bool = True, environment: dict[str, str] | None = None, **variables: str | None
) -> subprocess.CompletedProcess:
    """Run make in a baked project with this environment (VENV=None: the project's own .venv;
    a variable of `environment` set to None is removed); fail with its output if check."""
    variables = {"VENV": sys.prefix, **variables}
    assignments = [f"{key}={value}" for key, value in variables.items() if value is not None]
    env = {k: v for k, v in os.environ.items() if k not in ("LUIGI_CONFIG_PATH", "PYTHONPATH", "MAKEFLAGS")}
    env = {k: v for k, v in {**env, **(environment or {})}.items() if v is not None}
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(project), *targets, *assignments],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    if check and result.returncode != 0:
        pytest.fail(f"make {' '.join(targets)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def tasks_run(result: subprocess.CompletedProcess) -> list[str]:
    """The tasks a pipeline run started, from its `run <Task>` lines."""
    return [line.split()[1] for line in result.stdout.splitlines() if line.startswith("run ")]


def completed_folders(project: Path, task: str) -> set[str]:
    """Hash folders of a task that hold a finished result (a manifest)."""
    return {p.parent.name for p in (project / "data" / "cache" / task).glob("[!.]*/manifest.json")}
