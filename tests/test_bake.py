"""Baking: every option combination renders completely, and the answers reach the files."""

from __future__ import annotations

import configparser
import py_compile
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PROBLEM_TYPES, TEMPLATE, run_cookiecutter_cli

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

# Options that interact (problem_type changes metric, demo data and model) are crossed with
# names that stress rendering; independent options cycle through the rows.
CASES = [
    {"problem_type": "binary"},
    {"problem_type": "multiclass"},
    {"problem_type": "regression"},
    {"problem_type": "binary", "project_name": "Café Прогноз 2025: the “big” one!", "author_name": 'Zoë "Q" O\'Neil'},
    {
        "problem_type": "multiclass",
        "project_name": "2024 Titanic",
        "id_column": "PassengerId",
        "target_column": "Survived",
    },
    {"problem_type": "regression", "project_name": "!!!", "seed": "0", "n_folds": "10", "workers": "8"},
    {
        "problem_type": "binary",
        "project_name": "House Prices",
        "competition": "house-prices",
        "s3_bucket": "my.kaggle-bucket",
        "s3_prefix": "comps/house-prices",
        "id_column": "display_id ad_id",
        "target_column": "Sale Price",
        "seed": "4294967295",
    },
]
EXPECTED_FILES = [
    "README.md",
    "Makefile",
    "luigi.cfg",
    "pyproject.toml",
    ".gitignore",
    "requirements.lock",
    ".pre-commit-config.yaml",
    ".github/workflows/ci.yml",
    "data/raw/.gitkeep",
    "submissions/.gitkeep",
    "runs/.gitkeep",
    "tests/conftest.py",
]
PACKAGE_FILES = [
    "__init__.py",
    "__main__.py",
    "features/__init__.py",
    "features/stub.py",
    "models/__init__.py",
    "models/stub.py",
    "pipeline/__init__.py",
    "pipeline/registry.py",
    "pipeline/tasks.py",
    "pipeline/storage/cache.py",
    "pipeline/config.py",
    "pipeline/data/ingest.py",
    "pipeline/data/split.py",
    "pipeline/training/train.py",
    "pipeline/training/submission.py",
    "pipeline/runs/__main__.py",
    "pipeline/runs/record.py",
]
# The top of the package: the user's rooms, and the template's machinery in one folder.
PACKAGE_TOP = ["__init__.py", "__main__.py", "features", "metrics", "models", "pipeline"]


def case_id(case: dict[str, str]) -> str:
    return "-".join(f"{k}={v}" for k, v in case.items() if k in ("problem_type", "project_name"))


@pytest.fixture(scope="module", params=CASES, ids=case_id)
def baked(request: pytest.FixtureRequest, bake, tmp_path_factory: pytest.TempPathFactory):
    return request.param, bake(tmp_path_factory.mktemp("bake"), **request.param)


def test_nothing_left_unrendered(baked):
    """No Jinja syntax survives into any generated file or file name."""
    _, project = baked
    for path in project.rglob("*"):
        assert "{{" not in path.name and "{%" not in path.name, path
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert "{{ cookiecutter" not in text and "{%" not in text and "{{cookiecutter" not in text, path


def test_files_copied_without_rendering_hold_no_jinja():
    """cookiecutter.json's _copy_without_render (baking renders only the files that need it; a
    folder it names is copied whole, with no file name rendered): each pattern names template files
    or folders, and none of the files holds Jinja syntax."""
    import fnmatch
    import json

    patterns = json.loads((TEMPLATE / "cookiecutter.json").read_text())["_copy_without_render"]
    root = TEMPLATE / "{{cookiecutter.project_slug}}"
    files = [p.relative_to(root) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    for pattern in patterns:
        matched = [
            str(name) for name in files if any(fnmatch.fnmatch(str(part), pattern) for part in (name, *name.parents))
        ]
        assert matched, f"_copy_without_render: {pattern} matches no file"
        for name in matched:
            text = (root / name).read_text(encoding="utf-8")
            assert not any(mark in text for mark in ("{{", "{%", "{#")), f"{name} holds Jinja: remove it from {pattern}"


def test_expected_files_exist(baked):
    """The layout DESIGN.md promises is there, with the package under its module name: the user's rooms
    and one folder of the template's machinery at its top."""
    _, project = baked
    for name in EXPECTED_FILES:
        assert (project / name).is_file(), name
    packages = list((project / "src").iterdir())
    assert len(packages) == 1 and packages[0].name.isidentifier(), packages
    for name in PACKAGE_FILES:
        assert (packages[0] / name).is_file(), name
    assert sorted(p.name for p in packages[0].iterdir() if p.name != "__pycache__") == PACKAGE_TOP


def test_config_files_carry_the_answers(baked):
    """luigi.cfg and pyproject.toml parse, and hold the answers given."""
    answers, project = baked
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(project / "luigi.cfg", encoding="utf-8")
    competition = cfg["competition"]
    assert competition["problem_type"] == answers["problem_type"]
    assert competition["id_column"] == answers.get("id_column", "id")
    assert competition["target_column"] == answers.get("target_column", "target")
    assert competition["seed"] == answers.get("seed", "42")
    assert competition["n_folds"] == answers.get("n_folds", "5")
    assert cfg["s3"]["bucket"] == answers.get("s3_bucket", "")
    assert cfg["s3"]["prefix"] == answers.get("s3_prefix", "")
    assert cfg["kaggle"]["competition"] == answers.get("competition", "")
    assert cfg["retcode"].getint("task_failed") > 0
    assert "--workers $(WORKERS)" in (project / "Makefile").read_text()
    assert f"WORKERS ?= {answers.get('workers', '2')}" in (project / "Makefile").read_text()

    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["name"] == project.name
    assert pyproject["project"]["description"] == answers.get("project_name", "Kaggle Competition")
    if answers.get("author_name"):
        assert pyproject["project"]["authors"] == [{"name": answers["author_name"]}]
    assert {"luigi", "pandas", "pyarrow", "scikit-learn", "boto3", "matplotlib", "kaggle", "six"} <= {
        dep.split(">")[0].split("=")[0].split("<")[0].split(";")[0] for dep in pyproject["project"]["dependencies"]
    }


def test_python_compiles_and_passes_ruff(baked):
    """Generated code compiles and is ruff-clean (check and format), whatever the names."""
    _, project = baked
    for path in project.rglob("*.py"):
        py_compile.compile(str(path), doraise=True)
    for args in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        result = subprocess.run([sys.executable, "-m", "ruff", *args], cwd=project, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_make_help_lists_every_target(baked):
    """`make` alone prints help naming each target of DESIGN.md."""
    _, project = baked
    result = subprocess.run(["make", "-C", str(project)], capture_output=True, text=True, check=True)
    for target in ("install", "data", "split", "features", "train", "submission", "all", "test", "lint"):
        assert f"  {target} " in result.stdout, target
    for target in ("runs", "lb", "report", "status", "gc", "rerun", "lock", "hooks"):
        assert f"  {target} " in result.stdout, target


def test_interactive_prompts_are_readable(tmp_path: Path, cookiecutter_config: Path):
    """Every option has a readable prompt, and answering them on a terminal bakes a project."""
    import json

    from conftest import DEFAULTS, TEMPLATE

    prompts = json.loads((TEMPLATE / "cookiecutter.json").read_text())["__prompts__"]
    assert {k for k in DEFAULTS if not k.startswith("_")} == set(prompts)
    assert set(prompts["problem_type"]) == {"__prompt__", *PROBLEM_TYPES}

    answers = ["Otto Group", "", "", "", "", "2", "", "", "7", "3", "", "", ""]
    result = run_cookiecutter_cli(tmp_path, cookiecutter_config, stdin="\n".join(answers) + "\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "multiclass: one of several classes" in result.stdout
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(tmp_path / "otto-group" / "luigi.cfg")
    assert (cfg["competition"]["problem_type"], cfg["competition"]["seed"]) == ("multiclass", "7")
    assert "cd otto-group" in result.stdout
