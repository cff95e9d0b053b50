"""Run records without running the pipeline: git patches, status against Luigi, lb, rerun commands."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import luigi
import pytest

from {{ cookiecutter.module_name }}.pipeline.errors import PipelineError
from {{ cookiecutter.module_name }}.pipeline.runs import run_id
from {{ cookiecutter.module_name }}.pipeline.runs.dag import overrides
from {{ cookiecutter.module_name }}.pipeline.runs.gc import stale_hours
from {{ cookiecutter.module_name }}.pipeline.runs.gitinfo import git_state
from {{ cookiecutter.module_name }}.pipeline.runs.record import all_records, read_record, set_lb
from {{ cookiecutter.module_name }}.pipeline.runs.rerun import make_command
from {{ cookiecutter.module_name }}.pipeline.runs.status import COMPLETE, WOULD_RUN, plan

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env).stdout


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file() and ".git" not in p.parts}


def test_run_id_sorts_by_time_and_names_the_train_hash():
    """Run ids sort by when Train finished and end with its hash."""
    early = run_id({"finished_utc": "2026-01-02T03:04:05+00:00", "hash": "abcdef0123456789"})
    late = run_id({"finished_utc": "2026-01-02T13:04:05+00:00", "hash": "0000000000000000"})
    assert early == "20260102-030405-abcdef01" and early < late


def test_overrides_keep_config_values_and_drop_scheduling():
    """Only `--<section>-<key>` values reach the record; workers and scheduler do not."""
    args = ["Submission", "--local-scheduler", "--workers", "4", "--competition-seed", "7", "--train-model-params={}"]
    assert overrides(args) == ["--competition-seed", "7", "--train-model-params={}"]


def test_make_command_turns_the_seed_into_seed_and_the_rest_into_luigi_args():
    record = {"params": {"overrides": ["--competition-seed", "7", "--competition-n-folds", "3"]}}
    assert make_command(record) == "make all SEED=7 LUIGI_ARGS='--competition-n-folds 3'"
    assert make_command({"params": {"overrides": []}}) == "make all"


def test_outside_git_the_state_says_so(tmp_path: Path):
    state = git_state(tmp_path, [])
    assert state["repository"] is False and state["commit"] is None and "not a git repository" in state["note"]


def test_patch_recreates_the_tree_and_leaves_the_index_alone(tmp_path: Path):
    """Edits, staged new files and untracked files are in the patch; outputs are not; applying
    it to a clone at the commit gives the same files; the user's index is as it was."""
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "a.py").write_text("a = 1\n")
    (repo / "bin.dat").write_bytes(bytes(range(256)))
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "first")
    assert git_state(repo, [])["dirty"] is False

    (repo / "src" / "a.py").write_text("a = 2\n")
    (repo / "bin.dat").write_bytes(bytes(range(255, -1, -1)))
    (repo / "staged.py").write_text("s = 1\n")
    git(repo, "add", "staged.py")
    (repo / "src" / "new.py").write_text("n = 1\n")
    (repo / "runs").mkdir()
    (repo / "runs" / "old.json").write_text("{}\n")
    index_before = git(repo, "status", "--porcelain")

    state = git_state(repo, [repo / "runs"])
    assert state["dirty"] is True and state["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert "runs/old.json" not in state["patch"]
    assert git(repo, "status", "--porcelain") == index_before
    (tmp_path / "run.patch").write_text(state["patch"])

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    git(clone, "apply", str(tmp_path / "run.patch"))
    expected = {name: data for name, data in files(repo).items() if not name.startswith("runs")}
    assert files(clone) == expected


def test_secrets_beside_the_code_stay_out_of_the_patch(tmp_path: Path):
    """The project's .gitignore keeps credential files out of a dirty run's patch, which is
    committed and pushed to S3; new code files still go in."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / ".gitignore", repo / ".gitignore")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "first")
    secrets = ["kaggle.json", ".env", ".env.local", ".envrc", "key.pem", "user_accessKeys.csv", "credentials.csv"]
    for name in secrets:
        (repo / name).write_text("SECRET-VALUE\n")
    (repo / ".env.example").write_text("AWS_PROFILE=\n")
    (repo / "feature.py").write_text("x = 1\n")

    patch = git_state(repo, [])["patch"]
    assert "feature.py" in patch and ".env.example" in patch
    assert "SECRET-VALUE" not in patch


GRAPH = {"d": ["b", "c"], "b": ["a"], "c": ["a2"], "a": [], "a2": []}
RAN: list[str] = []


class Step(luigi.Task):
    """A toy task of GRAPH: done when its file exists."""

    name = luigi.Parameter()
    folder = luigi.Parameter()

    def requires(self):
        return [Step(name=upstream, folder=self.folder) for upstream in GRAPH[self.name]]

    def output(self):
        return luigi.LocalTarget(os.path.join(self.folder, self.name))

    def run(self):
        RAN.append(self.name)
        Path(self.output().path).write_text("done")


def test_status_plan_matches_what_luigi_runs(tmp_path: Path):
    """The status plan marks as would-run exactly the tasks Luigi's worker then runs: incomplete
    tasks and their upstream, but not the upstream of a complete task (b is done, a is not)."""
    (tmp_path / "b").write_text("done")
    root = Step(name="d", folder=str(tmp_path))
    states = plan(root)
    names = {Step(name=n, folder=str(tmp_path)).task_id: n for n in GRAPH}
    would = sorted(names[task_id] for task_id, state in states.items() if state == WOULD_RUN)
    assert would == ["a2", "c", "d"]
    assert states[Step(name="b", folder=str(tmp_path)).task_id] == COMPLETE

    RAN.clear()
    assert luigi.build([root], local_scheduler=True, workers=1, log_level="ERROR")
    assert sorted(RAN) == would


def test_lb_rejects_unknown_runs_and_non_numbers(tmp_path: Path, luigi_config):
    luigi_config("paths", "runs", str(tmp_path))
    record = {"run_id": "20260101-000000-abcdef01", "tasks": {}, "cv": {"score": 0.5}, "lb": None}
    path = tmp_path / f"{record['run_id']}.json"
    path.write_text(json.dumps(record))
    with pytest.raises(PipelineError, match="'nan'"):
        set_lb(record["run_id"], "nan")
    with pytest.raises(PipelineError, match="no record"):
        set_lb("20990101-000000-00000000", "0.5")
    assert json.loads(path.read_text()) == record
    set_lb(record["run_id"], "0.75")
    assert read_record(record["run_id"])["lb"]["score"] == 0.75


def test_tune_results_are_not_run_records_and_stale_hours_must_be_a_number(tmp_path: Path, luigi_config):
    """runs/tune-<model>.json (make tune's best parameters) is skipped by every records command,
    not refused as a broken record; `make gc STALE_HOURS=x` stops with one line unless x is hours."""
    luigi_config("paths", "runs", str(tmp_path))
    record = {"run_id": "20260101-000000-abcdef01", "tasks": {}}
    (tmp_path / f"{record['run_id']}.json").write_text(json.dumps(record))
    (tmp_path / "tune-hgb.json").write_text(json.dumps({"model": "hgb", "study": "data/cache/Tune/x/journal.log"}))
    assert all_records() == [record]
    assert stale_hours("") == 24 and stale_hours("0") == 0 and stale_hours("1.5") == 1.5
    for bad in ("x", "-1", "nan", "inf"):
        with pytest.raises(PipelineError, match=f"STALE_HOURS={bad}: give a number of hours"):
            stale_hours(bad)
