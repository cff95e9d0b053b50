"""Template updates with cruft: a project baked from an older commit of the template takes in a newer one.

A temporary git repository holds two commits of this template: the files as they are, then a small
change inside the machinery folder (`src/<module>/pipeline/`). A project is baked from the first with
`cruft create`, put under git, and its competitor works in their own rooms: edits a feature and adds one,
edits a model's parameters and adds a model, and registers both; `cruft update` then brings in the second
commit.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SAME_FOR_EVERY_PROBLEM, TEMPLATE, left_out, make

CRUFT = Path(sys.prefix) / "bin" / "cruft"
GIT_ENV = {"GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.com"}
GIT_ENV |= {"GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@example.com"}
PACKAGE = "{{cookiecutter.project_slug}}/src/{{cookiecutter.module_name}}"
MACHINERY_CHANGE = "# Template v2: a change to machinery the template owns.\n"
USER_EDIT = ('astype("float64")', 'astype("float64").clip(-1e12, 1e12)')
MODEL_EDIT = ('{"C": 1.0, "max_iter": 1000}', '{"C": 0.3, "max_iter": 2000}')


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env).stdout.strip()


def cruft(cwd: Path, *args: str, config: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, **GIT_ENV, "COOKIECUTTER_CONFIG": str(config)}
    return subprocess.run([CRUFT, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


def write_competition(raw: Path, n_train: int = 300, n_test: int = 60) -> None:
    """The user's competition in data/raw: binary, with the columns their new feature reads (f_size,
    f_count), a category and a date."""
    rng = np.random.default_rng(0)
    rows = n_train + n_test
    frame = pd.DataFrame(
        {
            "id": np.arange(rows),
            "f_size": rng.normal(10.0, 3.0, rows).round(3),
            "f_count": rng.integers(1, 20, rows),
            "f_color": rng.choice(["red", "green", "blue"], rows),
            "f_date": (pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, rows), unit="D")).astype(str),
        }
    )
    signal = frame["f_size"] / frame["f_count"] + (frame["f_color"] == "red") + rng.normal(0.0, 1.0, rows)
    frame.iloc[:n_train].assign(target=(signal[:n_train] > signal.median()).astype(int)).to_csv(
        raw / "train.csv", index=False
    )
    frame.iloc[n_train:].to_csv(raw / "test.csv", index=False)
    pd.DataFrame({"id": frame["id"].iloc[n_train:], "target": 0.5}).to_csv(raw / "sample_submission.csv", index=False)


def register(registry: Path, after: str, new_import: str, last: str) -> None:
    """A user's registration in FEATURES or MODELS: import the class after `after`, list it after `last`."""
    name = new_import.rsplit(" ", 1)[1]
    text = registry.read_text().replace(f"{after}\n", f"{after}\n{new_import}\n")
    registry.write_text(text.replace(f"    {last},\n]", f"    {last},\n    {name},\n]"))


def template_files() -> list[str]:
    """The template's files as git sees them (tracked, or new and not ignored)."""
    listed = git(TEMPLATE, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    return [name for name in listed if name and (TEMPLATE / name).is_file()]


@pytest.fixture(scope="module")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """(repository, older commit, newer commit) of this template."""
    repo = tmp_path_factory.mktemp("template") / "cookiecutter-luigi-kaggle"
    for name in template_files():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(TEMPLATE / name, repo / name)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "v1")
    old = git(repo, "rev-parse", "HEAD")
    gc = repo / PACKAGE / "pipeline" / "runs" / "gc.py"
    gc.write_text(gc.read_text() + "\n" + MACHINERY_CHANGE)
    readme = repo / "{{cookiecutter.project_slug}}" / "README.md"
    readme.write_text(readme.read_text() + "\n## Template v2\n\nA new section from the template.\n")
    git(repo, "commit", "-qam", "v2")
    return repo, old, git(repo, "rev-parse", "HEAD")


def test_cruft_create_bakes_what_cookiecutter_bakes(template_repo, bake, cookiecutter_config: Path, tmp_path: Path):
    """`cruft create` gives the same files as cookiecutter (same defaults, hooks and answers), plus
    .cruft.json with the answers and the template's commit; a plain cookiecutter bake has no .cruft.json."""
    repo, old, _ = template_repo
    answers = json.dumps({"problem_type": "regression", "project_name": "House Prices"})
    args = ["create", str(repo), "--checkout", old, "--no-input", "--output-dir", "cruft", "--extra-context", answers]
    created = cruft(tmp_path, *args, config=cookiecutter_config)
    assert created.returncode == 0, created.stdout + created.stderr
    ours = tmp_path / "cruft" / "house-prices"
    theirs = bake(tmp_path / "cookiecutter", problem_type="regression", project_name="House Prices")
    assert not (theirs / ".cruft.json").exists()
    state = json.loads((ours / ".cruft.json").read_text())
    assert state["commit"] == old and state["context"]["cookiecutter"]["module_name"] == "house_prices"
    files = {str(p.relative_to(theirs)) for p in theirs.rglob("*") if p.is_file()}
    assert {str(p.relative_to(ours)) for p in ours.rglob("*") if p.is_file()} == files | {".cruft.json"}
    assert [name for name in sorted(files) if not filecmp.cmp(theirs / name, ours / name, shallow=False)] == []


def test_cruft_update_brings_template_changes_and_keeps_the_users_features_and_models(
    template_repo, cookiecutter_config: Path, tmp_path: Path
):
    """After `cruft update` to the newer commit: the template's change is in the machinery folder, the
    user's edited and new features and models and both registries are intact with no conflict, `cruft
    check` passes, the project's own `make test` passes (but for the files whose subject is the same for
    every problem type: the multiclass bake runs them), and `make all` trains the user's new model on
    the user's features."""
    repo, old, new = template_repo
    created = cruft(tmp_path, "create", str(repo), "--checkout", old, "--no-input", config=cookiecutter_config)
    assert created.returncode == 0, created.stdout + created.stderr
    project = tmp_path / "kaggle-competition"
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "baked")

    features = project / "src" / "kaggle_competition" / "features"
    numeric = features / "numeric.py"
    numeric.write_text(numeric.read_text().replace(*USER_EDIT))
    ratio = features / "size_per_count.py"  # README: copy the stub, write make(), list the class
    ratio.write_text(
        (features / "stub.py").read_text()
        .replace("class RatioFeature", "class SizePerCount")
        .replace('["numerator_column", "denominator_column"]', '["f_size", "f_count"]')
    )  # fmt: skip
    registry = features / "__init__.py"
    register(registry, "from .numeric import NumericColumns", "from .size_per_count import SizePerCount", "LastVisit")
    models = project / "src" / "kaggle_competition" / "models"
    linear = models / "linear.py"
    linear.write_text(linear.read_text().replace(*MODEL_EDIT))
    strong = models / "strong_linear.py"  # a model of their own: the linear one, regularised more
    strong.write_text(
        linear.read_text()
        .replace("class Linear(", "class StrongLinear(")
        .replace('name = "linear"', 'name = "strong_linear"')
        .replace(MODEL_EDIT[1], '{"C": 0.05, "max_iter": 2000}')
    )  # fmt: skip
    model_registry = models / "__init__.py"
    register(model_registry, "from .linear import Linear", "from .strong_linear import StrongLinear", "XGB")
    pipeline_test = project / "tests" / "test_pipeline.py"  # the user's tests know their features
    listed = '    "TargetEncoding",\n'
    pipeline_test.write_text(pipeline_test.read_text().replace(listed, listed + '    "SizePerCount",\n'))
    git(project, "add", "-A")
    git(project, "commit", "-qm", "my features")
    edited = {p: p.read_text() for p in (numeric, ratio, registry, linear, strong, model_registry, pipeline_test)}
    assert "SizePerCount," in edited[registry] and USER_EDIT[1] in edited[numeric]
    assert "StrongLinear," in edited[model_registry] and MODEL_EDIT[1] in edited[linear]

    behind = cruft(project, "check", config=cookiecutter_config)
    assert behind.returncode != 0, behind.stdout
    updated = cruft(project, "update", "--skip-apply-ask", "--checkout", new, config=cookiecutter_config)
    assert updated.returncode == 0, updated.stdout + updated.stderr

    assert (project / "src/kaggle_competition/pipeline/runs/gc.py").read_text().endswith(MACHINERY_CHANGE)
    assert "## Template v2" in (project / "README.md").read_text()
    for path, text in edited.items():
        assert path.read_text() == text, f"{path.name}: the user's edit was lost"
    assert list(project.rglob("*.rej")) == [] and "<<<<<<<" not in (project / "README.md").read_text()
    assert json.loads((project / ".cruft.json").read_text())["commit"] == new
    assert cruft(project, "check", "--checkout", new, config=cookiecutter_config).returncode == 0
    rooms = [f"src/kaggle_competition/{room}" for room in ("features", "models")]
    assert git(project, "status", "--porcelain", "--", *rooms) == "", "cruft update changed the user's rooms"
    result = make(project, "test", environment={"TEST_S3_CACHE": "0", **left_out(SAME_FOR_EVERY_PROBLEM)})
    assert " passed" in result.stdout
    write_competition(project / "data" / "raw")
    pipeline = make(project, "all", MODEL="strong_linear")
    assert "done  Train model=strong_linear" in pipeline.stdout and "done  SizePerCount" in pipeline.stdout
    assert "Submission: submissions/" in pipeline.stdout
