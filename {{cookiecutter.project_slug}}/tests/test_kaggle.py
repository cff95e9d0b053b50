"""Download, submit and lb against a fake Kaggle API on 127.0.0.1 (tests/kaggle_fake.py).

Every test runs the real `kaggle` client in a subprocess (the pipeline's or the runs command
line), pointed at the fake through the client's own KAGGLE_API_ENVIRONMENT and requests' proxy
setting, with fake credentials and a HOME of its own: no real credentials are read or sent.
The client is never imported here, since importing it authenticates.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import json
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from conftest import MODULE, Competition, Pipeline, describe, tasks_run, tiny_dataset, wait_for
from kaggle_fake import KEY, TOKEN, USERNAME, FakeKaggle, running

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("kaggle") is None, reason="the kaggle client (2.x) needs Python >= 3.11"
)

SLUG = "demo-comp"
RULES = f"https://www.kaggle.com/competitions/{SLUG}/rules"


# --- helpers ------------------------------------------------------------------------------------


def competition_files(competition: Competition) -> dict[str, bytes]:
    train, test, sample = tiny_dataset(competition, n_train=200, n_test=40)
    tables = {"train.csv": train, "test.csv": test, "sample_submission.csv": sample}
    return {name: table.to_csv(index=False).encode() for name, table in tables.items()}


def zipped(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return path


def inner_zip(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr(name, data)
    return buffer.getvalue()


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file in folder, hidden ones and those in subfolders too."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error(result: subprocess.CompletedProcess) -> str:
    """The single ERROR line of a failed run (no traceback, no key in the output)."""
    assert result.returncode != 0, describe(result)
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1, describe(result)
    assert "Traceback" not in result.stderr and KEY not in result.stdout + result.stderr, describe(result)
    return errors[0]


def runs_command(pipeline: Pipeline, *args: str) -> subprocess.CompletedProcess:
    """`python -m <package>.runs <args>`, what make submit / make lb / make runs run."""
    process = subprocess.Popen(
        [sys.executable, "-m", f"{MODULE}.pipeline.runs", *args],
        cwd=pipeline.root,
        env=pipeline.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return wait_for(process)


@pytest.fixture
def fake() -> Iterator[FakeKaggle]:
    with running() as server:
        yield server


@pytest.fixture
def pipeline(tmp_path: Path, fake: FakeKaggle) -> Pipeline:
    """An isolated pipeline whose [kaggle] competition is the fake's, with its credentials."""
    home = tmp_path / "home"
    home.mkdir()
    pipeline = Pipeline(tmp_path / "project", kaggle={"competition": SLUG, "max_attempts": 1})
    pipeline.environment = fake.environment(home)
    return pipeline


@pytest.fixture
def files(competition: Competition) -> dict[str, bytes]:
    return competition_files(competition)


@pytest.fixture
def published(fake: FakeKaggle, files: dict[str, bytes], tmp_path: Path) -> Path:
    """The competition on the fake, its archive holding the three files as Kaggle zips them."""
    archive = zipped(tmp_path / "archive.zip", files)
    fake.competition(SLUG, archive)
    return archive


# --- download -----------------------------------------------------------------------------------


def test_empty_raw_downloads_the_competition_and_makes_a_valid_submission(
    pipeline: Pipeline, fake: FakeKaggle, files: dict[str, bytes], published: Path, competition: Competition
):
    """With data/raw empty and [kaggle] competition set, Submission first downloads the files
    (byte-identical, with the credentials as Basic auth), then runs the pipeline on them."""
    result = pipeline.run("Submission")
    assert result.returncode == 0, describe(result)
    assert tasks_run(result)[:2] == ["Download", "RawData"]
    assert {name: (pipeline.raw / name).read_bytes() for name in files} == files
    assert (fake.count("DownloadDataFiles"), fake.count("archive")) == (1, 1)
    assert fake.requests[0].authorization.startswith("Basic ")
    [written] = list(pipeline.submissions.glob("*.csv"))
    sample = pd.read_csv(io.BytesIO(files["sample_submission.csv"]))
    submission = pd.read_csv(written)
    assert list(submission.columns) == list(sample.columns)
    assert submission[competition.id_column].tolist() == sample[competition.id_column].tolist()
    assert not [p for p in pipeline.raw.iterdir() if p.name.startswith(".download-")]


def test_second_download_sends_no_request_and_force_downloads_again(
    pipeline: Pipeline, fake: FakeKaggle, published: Path
):
    """The record in data/raw/.download.json makes a second download a no-op without a single
    request; FORCE (--force) downloads the archive again."""
    assert pipeline.run("Download").returncode == 0
    record = json.loads((pipeline.raw / ".download.json").read_text())
    assert record["competition"] == SLUG and set(record["files"]) == {"train.csv", "test.csv", "sample_submission.csv"}
    assert record["unpacked_while_downloading"] is True
    sent = len(fake.requests)
    again = pipeline.run("Download")
    assert again.returncode == 0, describe(again)
    assert tasks_run(again) == [] and len(fake.requests) == sent
    forced = pipeline.run("Download", "--force")
    assert forced.returncode == 0, describe(forced)
    assert fake.count("archive") == 2


def test_nested_folders_and_csv_zip_members_end_where_ingest_looks(
    pipeline: Pipeline, fake: FakeKaggle, files: dict[str, bytes], tmp_path: Path
):
    """An archive of one folder, with train.csv zipped inside it and test.csv in a subfolder,
    still gives data/raw/train.csv, test.csv and sample_submission.csv; other files keep their place."""
    members = {
        "comp/data/train.csv.zip": inner_zip("train.csv", files["train.csv"]),
        "comp/data/test.csv": files["test.csv"],
        "comp/sample_submission.csv": files["sample_submission.csv"],
        "comp/extra/notes.txt": b"notes\n",
    }
    fake.competition(SLUG, zipped(tmp_path / "nested.zip", members))
    result = pipeline.run("Download")
    assert result.returncode == 0, describe(result)
    assert {name: (pipeline.raw / name).read_bytes() for name in files} == files
    assert (pipeline.raw / "extra" / "notes.txt").read_bytes() == b"notes\n"
    assert not (pipeline.raw / "data" / "train.csv.zip").exists()


def test_archive_without_the_competition_files_names_what_it_holds(
    pipeline: Pipeline, fake: FakeKaggle, files: dict[str, bytes], tmp_path: Path
):
    """An archive without train.csv and sample_submission.csv stops with one line that lists its
    files; data/raw is left as it was."""
    fake.competition(SLUG, zipped(tmp_path / "odd.zip", {"train_v2.csv": files["train.csv"], "test.csv": b"id\n1\n"}))
    (pipeline.raw / "keep.txt").write_text("mine\n")
    before = snapshot(pipeline.raw)
    error = one_error(pipeline.run("Download"))
    assert "no train.csv, sample_submission.csv" in error and "train_v2.csv" in error, error
    assert snapshot(pipeline.raw) == before


def not_a_zip(fake: FakeKaggle, tmp_path: Path) -> dict[str, str]:
    (tmp_path / "page.zip").write_text("<html>not a zip</html>")
    fake.competition(SLUG, tmp_path / "page.zip")
    return {}


def damaged_zip(fake: FakeKaggle, tmp_path: Path) -> dict[str, str]:
    data = bytearray((tmp_path / "archive.zip").read_bytes())
    data[60] ^= 0xFF  # inside the first member's compressed bytes
    (tmp_path / "damaged.zip").write_bytes(bytes(data))
    fake.competition(SLUG, tmp_path / "damaged.zip")
    return {}


ERRORS = {
    "no credentials": (lambda fake, tmp: {"KAGGLE_USERNAME": None, "KAGGLE_KEY": None}, "no Kaggle credentials"),
    "wrong key": (lambda fake, tmp: {"KAGGLE_KEY": "wrong"}, "rejected the credentials (401)"),
    "rules not accepted": (
        lambda fake, tmp: fake.rules_accepted.clear() or {},
        f"accept the competition's rules at {RULES}",
    ),
    "unknown competition": (lambda fake, tmp: fake.archives.clear() or {}, f"no competition '{SLUG}' (404)"),
    "connection dropped": (lambda fake, tmp: fake.fail("DownloadDataFiles", "drop") or {}, "cannot reach Kaggle"),
    "archive not sent": (lambda fake, tmp: fake.fail("archive", "drop") or {}, "cannot reach Kaggle"),
    "archive cut off": (lambda fake, tmp: fake.fail("archive", "cut") or {}, "cannot reach Kaggle"),
    "not a zip": (not_a_zip, "not a valid zip archive"),
    "damaged zip": (damaged_zip, "not a valid zip archive"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_each_download_error_is_one_line_and_leaves_data_raw_as_it_was(
    case: str, pipeline: Pipeline, fake: FakeKaggle, published: Path, tmp_path: Path
):
    """No credentials, a rejected key, rules not accepted (403, with the rules URL), an unknown
    competition (404), a dropped connection, an archive cut off, bytes that are not a zip and a
    damaged zip: each is one ERROR line, a non-zero exit, and data/raw unchanged."""
    setup, expected = ERRORS[case]
    pipeline.environment.update(setup(fake, tmp_path))
    (pipeline.raw / "keep.txt").write_text("mine\n")
    before = snapshot(pipeline.raw)
    error = one_error(pipeline.run("Download"))
    assert expected in error, error
    assert snapshot(pipeline.raw) == before


def test_an_api_token_is_used_when_there_is_no_key(pipeline: Pipeline, fake: FakeKaggle, published: Path):
    """KAGGLE_API_TOKEN alone authenticates (the client checks it first), sent as a Bearer token."""
    pipeline.environment.update(KAGGLE_USERNAME=None, KAGGLE_KEY=None, KAGGLE_API_TOKEN=TOKEN)
    result = pipeline.run("Download")
    assert result.returncode == 0, describe(result)
    assert fake.count("IntrospectToken") >= 1
    assert [r.authorization for r in fake.requests if r.name == "DownloadDataFiles"] == [f"Bearer {TOKEN}"]


class Unseekable(io.RawIOBase):
    """A file zipfile cannot seek back in, so it writes each member's sizes after its data."""

    def __init__(self, sink: io.BufferedWriter) -> None:
        self.sink = sink

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        return self.sink.write(data)


@pytest.mark.parametrize("descriptors", [False, True])
def test_members_inflated_while_the_archive_grows_match_the_archive(tmp_path: Path, descriptors: bool):
    """unzip.WhileDownloading inflates every member of an archive that is still being written
    (deflated and stored members; sizes before or after the data) into exactly what zipfile
    extracts; bytes that do not match the central directory give no result."""
    from importlib import import_module

    unzip = import_module(f"{MODULE}.pipeline.data.unzip")
    members = {"comp/train.csv": b"id,x\n" + b"1,22\n" * 50000, "comp/notes.txt": bytes(range(256)) * 300}
    archive = tmp_path / "whole.zip"
    with open(archive, "wb") as raw:
        target = Unseekable(raw) if descriptors else raw
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as bundle:
            for name, data in members.items():
                kind = zipfile.ZIP_DEFLATED if descriptors or name.endswith(".csv") else zipfile.ZIP_STORED
                bundle.writestr(name, data, compress_type=kind)

    def grow(path: Path, data: bytes) -> Path | None:
        inflating = unzip.WhileDownloading(path.parent / f"{path.stem}-inflated")
        inflating.start(path)
        with open(path, "wb") as out:
            for start in range(0, len(data), 4096):
                out.write(data[start : start + 4096])
                out.flush()
        inflating.stop()
        return inflating.result(path)

    (tmp_path / "a").mkdir()
    folder = grow(tmp_path / "a" / "copy.zip", archive.read_bytes())
    assert folder is not None
    assert {name: (folder / name).read_bytes() for name in members} == members
    damaged = bytearray(archive.read_bytes())
    damaged[len(damaged) // 3] ^= 0x55
    (tmp_path / "b").mkdir()
    assert grow(tmp_path / "b" / "damaged.zip", bytes(damaged)) is None


# --- submit and lb ------------------------------------------------------------------------------


def write_run(pipeline: Pipeline, run: str, score: float, content: bytes) -> Path:
    """A run record and its submission file, as make all writes them (the fields submit reads)."""
    submission = pipeline.submissions / f"submission-{run}.csv"
    submission.write_bytes(content)
    record = {
        "run_id": run,
        "time_utc": f"{run[:4]}-{run[4:6]}-{run[6:8]}T{run[9:11]}:{run[11:13]}:{run[13:15]}+00:00",
        "tasks": {},
        "features": ["NumericColumns"],
        "params": {"seed": 42},
        "git": {"repository": True, "commit": "0123456789abcdef0123", "dirty": False},
        "cv": {"metric": "roc_auc", "score": score, "folds": [score], "greater_is_better": True},
        "submission": {"path": str(submission), "sha256": hashlib.sha256(content).hexdigest()},
        "lb": None,
    }
    runs = pipeline.root / "runs"
    runs.mkdir(exist_ok=True)
    path = runs / f"{run}.json"
    path.write_text(json.dumps(record, indent=2))
    return path


OLD, NEW, HAND = "20261201-100000-aaaaaaaa", "20261202-100000-bbbbbbbb", "20261130-100000-cccccccc"


@pytest.fixture
def two_runs(pipeline: Pipeline, fake: FakeKaggle, published: Path) -> dict[str, Path]:
    return {
        OLD: write_run(pipeline, OLD, 0.8, b"id,target\n1,0.1\n"),
        NEW: write_run(pipeline, NEW, 0.81234, b"id,target\n1,0.9\n"),
    }


def record_of(path: Path) -> dict:
    return json.loads(path.read_text())


def test_submit_sends_run_id_cv_and_commit_and_keeps_the_ref(pipeline: Pipeline, fake: FakeKaggle, two_runs):
    """`make submit` uploads the newest run's file with a description naming the run, its CV score
    and commit (plus MESSAGE), and stores Kaggle's ref in the record; a second submit is refused
    without a request; FORCE submits again."""
    result = runs_command(pipeline, "submit", "", "--message", "more trees")
    assert result.returncode == 0, describe(result)
    [created] = [r.body for r in fake.requests if r.name == "CreateSubmission"]
    assert created["submissionDescription"] == f"run {NEW} | CV roc_auc 0.81234 | commit 01234567 | more trees"
    assert fake.uploads[created["blobFileTokens"]] == b"id,target\n1,0.9\n"
    [entry] = record_of(two_runs[NEW])["kaggle"]
    assert entry["ref"] == fake.submissions[SLUG][0]["ref"] and entry["competition"] == SLUG
    assert "kaggle" not in record_of(two_runs[OLD])

    sent = len(fake.requests)
    error = one_error(runs_command(pipeline, "submit", NEW))
    assert f"run {NEW} was already submitted" in error and "FORCE=1" in error, error
    assert len(fake.requests) == sent
    again = runs_command(pipeline, "submit", NEW, "--force")
    assert again.returncode == 0, describe(again)
    assert len(record_of(two_runs[NEW])["kaggle"]) == 2


def test_submit_refuses_a_changed_or_missing_submission_file(pipeline: Pipeline, fake: FakeKaggle, two_runs):
    """A submission file whose sha256 is not the record's, or that is gone, is refused with one
    line before anything is sent."""
    (pipeline.submissions / f"submission-{NEW}.csv").write_bytes(b"id,target\n1,0.5\n")
    assert "sha256 differs" in one_error(runs_command(pipeline, "submit", NEW))
    (pipeline.submissions / f"submission-{OLD}.csv").unlink()
    assert "missing" in one_error(runs_command(pipeline, "submit", OLD))
    assert fake.requests == []


def test_a_failed_upload_is_one_line_and_leaves_the_record(pipeline: Pipeline, fake: FakeKaggle, two_runs):
    before = two_runs[NEW].read_bytes()
    fake.fail("upload", 500)
    assert "the upload failed" in one_error(runs_command(pipeline, "submit", NEW))
    assert two_runs[NEW].read_bytes() == before and fake.count("CreateSubmission") == 0


def test_lb_writes_public_scores_into_the_right_records(pipeline: Pipeline, fake: FakeKaggle, two_runs):
    """`make lb` without SCORE reads this competition's submissions (several pages) and writes
    each public score into the record that made it, by ref or by the run id in a description
    typed on the website; a submission not scored yet shows as pending in `make runs`."""
    hand = write_run(pipeline, HAND, 0.7, b"id,target\n1,0.3\n")
    for run in (OLD, NEW):
        assert runs_command(pipeline, "submit", run).returncode == 0
    old_ref, new_ref = (record_of(two_runs[run])["kaggle"][0]["ref"] for run in (OLD, NEW))
    fake.score(old_ref, "0.80111")
    by_hand = fake.add_submission(SLUG, f"tried {HAND} from a notebook", status="COMPLETE", public_score="0.70222")
    for i in range(30):  # other submissions, so the list comes in pages
        fake.add_submission(SLUG, f"something else {i}", status="COMPLETE", public_score="0.5")

    result = runs_command(pipeline, "lb")
    assert result.returncode == 0, describe(result)
    assert fake.count("ListSubmissions") >= 2
    assert record_of(two_runs[OLD])["lb"]["score"] == 0.80111
    assert record_of(two_runs[NEW])["lb"] is None
    assert record_of(hand)["lb"]["score"] == 0.70222 and record_of(hand)["kaggle"][0]["ref"] == by_hand
    table = {line.split()[0]: line for line in runs_command(pipeline, "list").stdout.splitlines()[1:]}
    assert "pending" in table[NEW] and "0.80111" in table[OLD] and "0.70222" in table[HAND]

    fake.score(new_ref, "0.81999")
    assert runs_command(pipeline, "lb").returncode == 0
    assert record_of(two_runs[NEW])["lb"]["score"] == 0.81999


@pytest.mark.parametrize("how", [401, 404, "drop"])
def test_lb_errors_are_one_line_and_leave_the_records(pipeline: Pipeline, fake: FakeKaggle, two_runs, how):
    before = {path: path.read_bytes() for path in two_runs.values()}
    fake.fail("ListSubmissions", how)
    expected = {401: "rejected the credentials", 404: "no competition", "drop": "cannot reach Kaggle"}[how]
    assert expected in one_error(runs_command(pipeline, "lb"))
    assert {path: path.read_bytes() for path in two_runs.values()} == before


# --- the fake against the real command line -----------------------------------------------------


def test_the_kaggle_command_line_downloads_submits_and_lists_against_the_fake(
    pipeline: Pipeline, fake: FakeKaggle, published: Path, tmp_path: Path
):
    """The fake answers what the official CLI sends: `kaggle competitions download`, `submit`
    and `submissions` work against it as they would against Kaggle."""

    def kaggle(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "kaggle", "competitions", *args],
            env=pipeline.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )

    got = kaggle("download", "-c", SLUG, "-p", str(tmp_path / "cli"))
    assert got.returncode == 0, describe(got)
    assert (tmp_path / "cli" / f"{SLUG}.zip").read_bytes() == published.read_bytes()
    (tmp_path / "answer.csv").write_text("id,target\n1,0.5\n")
    sent = kaggle("submit", "-c", SLUG, "-f", str(tmp_path / "answer.csv"), "-m", "from the CLI")
    assert sent.returncode == 0, describe(sent)
    assert fake.submissions[SLUG][0]["description"] == "from the CLI"
    listed = kaggle("submissions", "-c", SLUG)
    assert listed.returncode == 0 and "from the CLI" in listed.stdout, describe(listed)
    assert {r.authorization for r in fake.requests if r.name not in ("archive", "upload")} == {
        "Basic " + base64.b64encode(f"{USERNAME}:{KEY}".encode()).decode()
    }
