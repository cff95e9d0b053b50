"""The pre-generation hook: each bad answer stops generation with one clear line, leaving nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jinja2
import pytest
from conftest import DEFAULTS, TEMPLATE, run_cookiecutter_cli

BAD_ANSWERS = [
    ("module_name=my-package", "module_name 'my-package' is not a valid Python package name"),
    ("module_name=1st", "module_name '1st' is not a valid Python package name"),
    ("module_name=class", "module_name 'class' is a Python keyword"),
    ("module_name=Café", "is not a valid Python package name"),
    ("project_slug=../escape", "project_slug '../escape' is not a folder name"),
    ("seed=-1", "seed '-1' is not an integer"),
    ("seed=4.2", "seed '4.2' is not an integer"),
    ("seed=99999999999", "seed '99999999999' is out of range"),
    ("n_folds=1", "n_folds '1' is out of range: use an integer >= 2"),
    ("n_folds=five", "n_folds 'five' is not an integer"),
    ("workers=0", "workers '0' is out of range: use an integer >= 1"),
    ("s3_bucket=My_Bucket", "s3_bucket 'My_Bucket' breaks S3 bucket naming rules"),
    ("s3_bucket=ab", "s3_bucket 'ab' breaks S3 bucket naming rules"),
    ("s3_bucket=my..bucket", "no '..'"),
    ("s3_bucket=192.168.10.1", "must not look like an IP address"),
    ("s3_bucket=xn--bucket", "reserved prefix or suffix"),
    ("s3_prefix=/abs/path", "s3_prefix '/abs/path' must be a relative key prefix"),
    ("s3_prefix=data/../up", "must be a relative key prefix"),
    ("id_column=target", "id_column and target_column are both 'target'"),
    ("id_column=display_id target", "id_column and target_column are both 'target'"),  # a key of two columns
    ("target_column=clicked id", "id_column and target_column are both 'id'"),  # two targets, one the key
    ("target_column=", "target_column is empty"),
    ("id_column=100%", "id_column '100%' has a line break, '%'"),
    ("competition=House Prices", "competition 'House Prices' is not a Kaggle competition slug"),
]


@pytest.mark.parametrize(("answer", "message"), BAD_ANSWERS, ids=[a for a, _ in BAD_ANSWERS])
def test_bad_answer_stops_generation(answer: str, message: str, tmp_path: Path, cookiecutter_config: Path):
    """A bad answer exits non-zero with `ERROR: <reason>` on stderr and leaves no folder."""
    out = tmp_path / "out"
    result = run_cookiecutter_cli(out, cookiecutter_config, answer)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR: ") and "Stopping" not in line]
    assert len(errors) == 1, result.stderr
    assert message in errors[0], errors[0]
    assert "Traceback" not in result.stderr
    assert list(out.iterdir()) == []


def test_slug_with_a_slash_is_refused(tmp_path: Path, cookiecutter_config: Path):
    """A slug with '/' is refused and its project folder removed.

    Cookiecutter creates the folder, parents included, before the hook runs, and removes only
    the project folder itself after; the empty parent it made stays (docs/decisions.md).
    """
    out = tmp_path / "out"
    result = run_cookiecutter_cli(out, cookiecutter_config, "project_slug=nested/slug")
    assert result.returncode != 0
    assert "ERROR: project_slug 'nested/slug' is not a folder name" in result.stderr
    assert [str(p.relative_to(out)) for p in out.rglob("*")] == ["nested"]


def test_good_edge_answers_pass(tmp_path: Path, cookiecutter_config: Path):
    """Answers at the edges of the rules are accepted."""
    answers = ["seed=0", "n_folds=2", "workers=1", "s3_bucket=a.b-c", "s3_prefix=comps/x/", "module_name=_private"]
    result = run_cookiecutter_cli(tmp_path, cookiecutter_config, *answers)
    assert result.returncode == 0, result.stderr


TRICKY = {"project_name": 'Quote " and \\ backslash', "project_slug": "quote-and-backslash", "module_name": "q"}


@pytest.mark.parametrize("hook", ["pre_gen_project.py", "post_gen_project.py"])
@pytest.mark.parametrize(
    ("answers", "ruff_args"),
    [({}, ["format", "--check"]), ({}, ["check"]), (TRICKY, ["check"])],
    ids=["defaults-format", "defaults-check", "quotes-check"],
)
def test_rendered_hooks_pass_ruff(hook: str, answers: dict, ruff_args: list[str], tmp_path: Path):
    """The hooks, rendered (with quotes and backslashes too), are valid, ruff-clean Python."""
    context = {k: v[0] if isinstance(v, list) else v for k, v in DEFAULTS.items() if not k.startswith("_")}
    context.update({"project_slug": "kaggle-competition", "module_name": "kaggle_competition", **answers})
    template = jinja2.Template((TEMPLATE / "hooks" / hook).read_text(), keep_trailing_newline=True)
    rendered = tmp_path / hook
    rendered.write_text(template.render(cookiecutter=context))
    config = ["--no-cache", "--config", str(TEMPLATE / "pyproject.toml")]
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *ruff_args, *config, str(rendered)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
