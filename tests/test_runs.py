"""Run records in one baked project under git: records, patches, status, gc, rerun, lb and report.

One fixture plays a competitor's session through real make targets and keeps what each step
printed and left on disk; the tests check it. Three runs train: a clean one (seed 42), another
seed (7) and a dirty tree (an edited feature, a new staged file and a new untracked file).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import make, tasks_run

GIT_ENV = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "Test"}
GIT_ENV["GIT_COMMITTER_EMAIL"] = "t@example.com"
OUTPUTS = ("runs/", "submissions/", "reports/")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env).stdout


def run_id_of(result: subprocess.CompletedProcess) -> str:
    [line] = [line for line in result.stdout.splitlines() if line.startswith("Run record: ")]
    return Path(line.removeprefix("Run record: ")).stem


def status_would_run(result: subprocess.CompletedProcess) -> list[str]:
    return [line.split()[2] for line in result.stdout.splitlines() if line.startswith("would run ")]


def tree(root: Path) -> dict[str, str]:
    """Checksums of the files git would see (tracked or new, not ignored), outputs left out."""
    listed = git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    return {
        name: hashlib.sha256((root / name).read_bytes()).hexdigest()
        for name in listed
        if name and not name.startswith(OUTPUTS) and (root / name).is_file()
    }


def cache_folders(project: Path) -> set[str]:
    cache = project / "data" / "cache"
    return {f"{p.parent.name}/{p.name}" for p in cache.glob("[!.]*/[!.]*") if p.is_dir()}


@dataclass
class Session:
    project: Path
    commit: str
    steps: dict[str, subprocess.CompletedProcess] = field(default_factory=dict)
    runs: dict[str, str] = field(default_factory=dict)
    dirty_tree: dict[str, str] = field(default_factory=dict)
    folders: dict[str, set[str]] = field(default_factory=dict)

    def record(self, name: str) -> dict:
        return json.loads((self.project / "runs" / f"{self.runs[name]}.json").read_text())


@pytest.fixture(scope="module")
def session(bake, tmp_path_factory: pytest.TempPathFactory) -> Session:
    project = bake(tmp_path_factory.mktemp("runs"), problem_type="binary", n_folds="3")
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "baked")
    s = Session(project, git(project, "rev-parse", "HEAD").strip())
    steps = s.steps

    steps["clean"] = make(project, "all")
    s.runs["clean"] = run_id_of(steps["clean"])
    steps["status_clean"] = make(project, "status")
    steps["rerun_clean"] = make(project, "rerun", RUN=s.runs["clean"])
    steps["after_rerun"] = make(project, "all")

    steps["status_seed"] = make(project, "status", SEED="7")
    steps["seed"] = make(project, "all", SEED="7")
    s.runs["seed"] = run_id_of(steps["seed"])

    make(project, "split", SEED="5")  # a Split result that no run record names
    s.folders["before_gc"] = cache_folders(project)
    steps["gc_dry"] = make(project, "gc")
    s.folders["after_dry_gc"] = cache_folders(project)
    steps["gc"] = make(project, "gc", CONFIRM="1")
    s.folders["after_gc"] = cache_folders(project)

    package = next((project / "src").iterdir())
    numeric = package / "features" / "numeric.py"
    numeric.write_text(numeric.read_text().replace('astype("float64")', 'astype("float64").clip(-1e12, 1e12)'))
    (package / "helpers.py").write_text('"""A new module nobody has added to git yet."""\n')
    (project / "notes.md").write_text("staged, not committed\n")
    git(project, "add", "notes.md")
    steps["status_dirty"] = make(project, "status")
    steps["dirty"] = make(project, "all")
    s.runs["dirty"] = run_id_of(steps["dirty"])
    s.dirty_tree = tree(project)

    steps["lb"] = make(project, "lb", RUN=s.runs["clean"], SCORE="0.97")
    steps["lb_text"] = make(project, "lb", RUN=s.runs["clean"], SCORE="high", check=False)
    steps["lb_unknown"] = make(project, "lb", RUN="20000101-000000-deadbeef", SCORE="0.5", check=False)
    steps["runs"] = make(project, "runs", SORT="cv")
    steps["report"] = make(project, "report")
    return s


def test_each_training_run_writes_a_record_whose_checksum_matches_its_submission(session: Session):
    """Two seeds give two records with different task hashes; each names a submission file that
    carries its run id and CV score, with the file's sha256."""
    clean, seed = session.record("clean"), session.record("seed")
    assert clean["run_id"] != seed["run_id"]
    assert (clean["params"]["seed"], seed["params"]["seed"]) == (42, 7)
    assert seed["params"]["overrides"] == ["--competition-seed", "7"]
    for task in ("Split", "Train model=hgb", "Submission"):
        assert clean["tasks"][task]["hash"] != seed["tasks"][task]["hash"]
    assert clean["tasks"]["Ingest"] == seed["tasks"]["Ingest"]
    for record in (clean, seed, session.record("dirty")):
        path = session.project / record["submission"]["path"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == record["submission"]["sha256"]
        assert record["run_id"] in path.name and f"{record['cv']['score']:.5f}" in path.name
        assert record["git"]["commit"] == session.commit
        assert set(record["packages"]) >= {"python", "luigi", "pandas", "scikit-learn", "numpy", "pyarrow"}
        assert record["cv"]["metric"] == "roc_auc" and len(record["cv"]["folds"]) == 3
        assert record["features"] == [
            "NumericColumns", "CategoryCodes", "DateParts", "TargetEncoding", "VisitTotals", "LastVisit"
        ]  # fmt: skip
        assert record["params"]["config"]["train"]["model_params"]
    assert clean["git"]["dirty"] is False and clean["git"]["patch"] is None
    assert not (session.project / "runs" / f"{clean['run_id']}.patch").exists()


def test_the_patch_applied_to_the_commit_recreates_the_dirty_tree(session: Session, tmp_path: Path):
    """A clone at the record's commit plus the record's patch holds exactly the files the dirty
    run used: the edited feature, the staged file and the untracked one."""
    record = session.record("dirty")
    assert record["git"]["dirty"] is True
    patch = session.project / record["git"]["patch"]
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(session.project), str(clone))
    git(clone, "checkout", "-q", record["git"]["commit"])
    assert tree(clone) != session.dirty_tree
    git(clone, "apply", str(patch))
    assert tree(clone) == session.dirty_tree
    assert any(name.endswith("helpers.py") for name in session.dirty_tree)


def test_status_lists_the_tasks_make_all_then_runs(session: Session):
    """`make status` says which tasks `make all` runs next: none when up to date, the seed's
    tasks for SEED=7, an edited feature and its downstream for a code change."""
    steps = session.steps
    assert status_would_run(steps["status_clean"]) == [] and "runs nothing" in steps["status_clean"].stdout
    assert sorted(status_would_run(steps["status_seed"])) == sorted(tasks_run(steps["seed"]))
    assert "Split" in status_would_run(steps["status_seed"])
    assert sorted(status_would_run(steps["status_dirty"])) == sorted(tasks_run(steps["dirty"]))
    assert sorted(tasks_run(steps["dirty"])) == ["NumericColumns", "Submission", "Train", *["TrainFold"] * 3]


def test_rerun_prints_the_commands_and_a_matching_tree_runs_nothing(session: Session):
    """`make rerun` prints the checkout and make commands; when the tree already matches the
    run, it says so and `make all` runs nothing."""
    out = session.steps["rerun_clean"].stdout
    assert f"git checkout {session.commit}" in out and "make all" in out
    assert "reuses its cached results and runs nothing" in out
    assert tasks_run(session.steps["after_rerun"]) == []


def test_gc_lists_orphans_and_deletes_only_with_confirm(session: Session):
    """`make gc` deletes nothing; CONFIRM=1 deletes the Split folder no record names and keeps
    every folder a record names, current or not."""
    folders = session.folders
    assert folders["after_dry_gc"] == folders["before_gc"]
    orphans = folders["before_gc"] - folders["after_gc"]
    assert len(orphans) == 1 and next(iter(orphans)).startswith("Split/")
    assert next(iter(orphans)) in session.steps["gc_dry"].stdout and "CONFIRM=1" in session.steps["gc_dry"].stdout
    for name in ("clean", "seed"):
        for task in session.record(name)["tasks"].values():
            assert (session.project / task["folder"] / "manifest.json").is_file(), task


def test_lb_records_a_score_and_refuses_bad_input(session: Session):
    """`make lb` stores the leaderboard score in the record; a non-number or an unknown run is
    one ERROR line naming it, and the record is unchanged."""
    assert session.record("clean")["lb"]["score"] == 0.97
    for step, named in (("lb_text", "'high'"), ("lb_unknown", "20000101-000000-deadbeef")):
        result = session.steps[step]
        assert result.returncode != 0
        errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR: ")]
        assert len(errors) == 1 and named in errors[0], result.stderr
    table = session.steps["runs"].stdout.splitlines()
    assert table[0].split()[:2] == ["run", "time"]
    rows = {line.split()[0]: line for line in table[1:]}
    assert set(rows) == set(session.runs.values())
    assert "0.97000" in rows[session.runs["clean"]] and "+dirty" in rows[session.runs["dirty"]]


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (which must come first)."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR", path
    return struct.unpack(">II", head[16:24])


def test_report_renders_plots_that_the_documents_show(session: Session):
    """`make report` writes Markdown and HTML that reference four valid, non-trivial PNGs."""
    reports = session.project / "reports"
    markdown, page = (reports / "report.md").read_text(), (reports / "report.html").read_text()
    images = sorted(p.name for p in reports.glob("*.png"))
    assert images == ["cv_over_time.png", "fold_scores.png", "importance.png", "oof.png"]
    for name in images:
        width, height = png_size(reports / name)
        assert width > 100 and height > 100 and (reports / name).stat().st_size > 5000
        assert f"]({name})" in markdown and f'src="{name}"' in page
    assert session.runs["dirty"] in markdown


def test_records_outside_git_say_so(session: Session, tmp_path: Path):
    """A copy of the project without .git still records its runs, saying it is not a repository."""
    copy = Path(shutil.copytree(session.project, tmp_path / "copy", ignore=shutil.ignore_patterns(".git")))
    for record in (copy / "runs").glob("*.json"):
        record.unlink()
    result = make(copy, "train")
    record = json.loads((copy / "runs" / f"{run_id_of(result)}.json").read_text())
    assert tasks_run(result) == []
    assert record["git"]["repository"] is False and "not a git repository" in record["git"]["note"]
