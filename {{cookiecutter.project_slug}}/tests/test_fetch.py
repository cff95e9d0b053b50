"""Fetch and Push against moto's S3 server over HTTP on 127.0.0.1 (see the `bucket` fixture)."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import stat
import urllib.request
import zipfile
from pathlib import Path

import luigi
import pytest
from conftest import MODULE, Bucket, Pipeline, describe

FILES = {
    "train.csv": b"id,f,target\n1,0.5,1\n2,0.25,0\n",
    "test.csv": b"id,f\n3,0.75\n",
    "sample_submission.csv": b"id,target\n3,0.5\n",
}


def fetch(refresh: bool = True) -> bool:
    """Fetch through Luigi's scheduler in this process; whether it succeeded."""
    from importlib import import_module

    task = import_module(f"{MODULE}.pipeline.data.fetch").Fetch(refresh=refresh)
    return luigi.build([task], local_scheduler=True, log_level="WARNING")


def fetch_task(refresh: bool = True):
    from importlib import import_module

    return import_module(f"{MODULE}.pipeline.data.fetch").Fetch(refresh=refresh)


def errors():
    from importlib import import_module

    return import_module(f"{MODULE}.pipeline.errors")


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file in folder (hidden ones too), by relative name."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def upload_competition(bucket: Bucket) -> None:
    for name, data in FILES.items():
        bucket.put(name, data)


@pytest.fixture
def raw(bucket: Bucket, tmp_path: Path) -> Path:
    return tmp_path / "raw"


# --- downloads ----------------------------------------------------------------------------------


def test_fetch_downloads_the_files_and_a_second_run_gets_nothing(bucket: Bucket, raw: Path):
    """The files arrive byte-identical; a second refresh asks S3 (HEAD) but downloads nothing."""
    upload_competition(bucket)
    assert fetch()
    assert {name: (raw / name).read_bytes() for name in FILES} == FILES
    gets = bucket.server.log.count("GET", f"/{bucket.name}/")
    heads = bucket.server.log.count("HEAD", f"/{bucket.name}/")
    assert gets == len(FILES)

    assert fetch()
    assert bucket.server.log.count("GET", f"/{bucket.name}/") == gets
    assert bucket.server.log.count("HEAD", f"/{bucket.name}/") == heads + len(FILES)
    assert not [p for p in raw.iterdir() if p.name.startswith(".fetch-")]


def test_every_object_under_the_prefix_comes_and_a_refresh_lists_them_again(bucket: Bucket, raw: Path):
    """`files = *` (the default) fetches every object directly under the prefix, every table of the
    competition, not those in its folders (make push's submissions/); done without a request
    afterwards; a refresh lists the prefix again and gets an object added since."""
    upload_competition(bucket)
    bucket.put("history.csv", b"id,amount\n1,2.5\n3,1.0\n")
    bucket.put("submissions/run.json", b"{}")  # what make push uploads: in a folder, not fetched back
    assert fetch()
    assert snapshot(raw).keys() - {".fetch.json"} == {*FILES, "history.csv"}
    before = len(bucket.server.log.requests)
    assert fetch_task(refresh=False).complete()
    assert len(bucket.server.log.requests) == before
    bucket.put("lookup.parquet", b"PAR1")
    assert fetch()
    assert (raw / "lookup.parquet").read_bytes() == b"PAR1"
    assert fetch_task(refresh=False).complete()


def test_fetch_without_refresh_is_done_with_no_request(bucket: Bucket, raw: Path):
    """Once fetched, Fetch() (what RawData requires) is complete from the local record alone."""
    upload_competition(bucket)
    assert fetch()
    before = len(bucket.server.log.requests)
    assert fetch_task(refresh=False).complete()
    assert len(bucket.server.log.requests) == before


def test_only_changed_or_edited_files_are_fetched_again(bucket: Bucket, raw: Path):
    """A replaced object and a locally edited file are fetched again; the third file is not."""
    upload_competition(bucket)
    assert fetch()
    bucket.put("test.csv", b"id,f\n3,0.5\n4,1.5\n")
    (raw / "sample_submission.csv").write_text("edited\n")
    log = bucket.server.log
    gets = {name: log.count("GET", bucket.path(name)) for name in FILES}
    assert fetch()
    again = {name: log.count("GET", bucket.path(name)) - gets[name] for name in FILES}
    assert again == {"train.csv": 0, "test.csv": 1, "sample_submission.csv": 1}
    assert (raw / "test.csv").read_bytes() == b"id,f\n3,0.5\n4,1.5\n"
    assert (raw / "sample_submission.csv").read_bytes() == FILES["sample_submission.csv"]


def test_gz_and_zip_files_are_unpacked(bucket: Bucket, raw: Path, luigi_config):
    """train.csv.gz becomes train.csv; a zip's members land in data/raw; archives are not kept."""
    bucket.put("train.csv.gz", gzip.compress(FILES["train.csv"]))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("test.csv", FILES["test.csv"])
        bundle.writestr("sample_submission.csv", FILES["sample_submission.csv"])
    bucket.put("rest.zip", archive.getvalue())
    luigi_config("s3", "files", json.dumps(["train.csv.gz", "rest.zip"]))
    assert fetch()
    assert {p.name for p in raw.iterdir() if not p.name.startswith(".")} == set(FILES)
    assert {name: (raw / name).read_bytes() for name in FILES} == FILES


def zipped(members: dict[str, bytes]) -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return archive.getvalue()


def files_in(folder: Path) -> dict[str, bytes]:
    """The files in folder and its subfolders, hidden ones left out."""
    return {name: data for name, data in snapshot(folder).items() if not Path(name).name.startswith(".")}


def test_a_zip_of_a_folder_unpacks_without_the_folder(bucket: Bucket, raw: Path, luigi_config):
    """competition.zip made by zipping competition/ (with macOS's __MACOSX/ metadata): its files
    land at the top of data/raw, where RawData finds them."""
    from importlib import import_module

    members = {f"competition/{name}": data for name, data in FILES.items()}
    members["competition/docs/notes.txt"] = b"notes\n"
    members["__MACOSX/competition/._train.csv"] = b"resource fork"
    bucket.put("competition.zip", zipped(members))
    luigi_config("s3", "files", json.dumps(["competition.zip"]))
    raw_data = import_module(f"{MODULE}.pipeline.data.raw").RawData()
    assert luigi.build([raw_data], local_scheduler=True, log_level="WARNING")
    assert files_in(raw) == {**FILES, "docs/notes.txt": b"notes\n"}
    assert fetch_task(refresh=False).complete()


def test_names_with_folders_keep_them(bucket: Bucket, raw: Path, luigi_config):
    """A configured name with a folder, and zip members in different folders, land in those
    folders of data/raw, created as needed; a second fetch downloads nothing."""
    upload_competition(bucket)
    bucket.put("extra/more/notes.csv", b"a\n1\n")
    bucket.put("mixed.zip", zipped({"a/x.csv": b"x\n", "b/y.csv": b"y\n", "z.csv": b"z\n"}))
    luigi_config("s3", "files", json.dumps([*FILES, "extra/more/notes.csv", "mixed.zip"]))
    assert fetch()
    extra = {"extra/more/notes.csv": b"a\n1\n", "a/x.csv": b"x\n", "b/y.csv": b"y\n", "z.csv": b"z\n"}
    assert files_in(raw) == {**FILES, **extra}
    assert fetch_task(refresh=False).complete()
    gets = bucket.server.log.count("GET", f"/{bucket.name}/")
    assert fetch()
    assert bucket.server.log.count("GET", f"/{bucket.name}/") == gets


def upload_in_parts(bucket: Bucket, name: str, data: bytes) -> None:
    """A multipart upload in 5 MB parts, which Fetch downloads in ranges of another size (8 MB)."""
    from boto3.s3.transfer import TransferConfig

    parts = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20)
    bucket.client.upload_fileobj(io.BytesIO(data), bucket.name, f"{bucket.prefix}/{name}", Config=parts)


def test_a_multipart_object_is_verified_and_fetched_once(bucket: Bucket, raw: Path, luigi_config):
    """An object uploaded in parts (ETag '<md5 of md5s>-N') passes the check and is not fetched twice."""
    data = bytes(range(256)) * (45 * 1024)  # 11.25 MB: parts of 5, 5 and 1.25 MB
    upload_in_parts(bucket, "big.bin", data)
    assert "-" in bucket.client.head_object(Bucket=bucket.name, Key=f"{bucket.prefix}/big.bin")["ETag"]
    luigi_config("s3", "files", json.dumps(["big.bin"]))
    assert fetch()
    assert (raw / "big.bin").read_bytes() == data
    gets = bucket.server.log.count("GET", bucket.path("big.bin"))
    assert gets == 2  # ranged GETs of 8 MB
    assert fetch()
    assert bucket.server.log.count("GET", bucket.path("big.bin")) == gets


def test_a_stale_local_copy_of_the_same_size_costs_one_part_size_request(bucket: Bucket, raw: Path, luigi_config):
    """A multipart object whose local copy has its size but other bytes: the part size (a HEAD of
    part 1) is asked for once, both to check the local copy and to verify the download."""
    data = bytes(range(256)) * (45 * 1024)
    upload_in_parts(bucket, "big.bin", data)
    (raw / "big.bin").write_bytes(b"x" * len(data))
    luigi_config("s3", "files", json.dumps(["big.bin"]))
    assert fetch()
    assert (raw / "big.bin").read_bytes() == data
    assert bucket.server.log.count("HEAD", f"{bucket.path('big.bin')}?partNumber=1") == 1


def test_files_already_in_place_are_recognised_without_a_download(bucket: Bucket, raw: Path):
    """Files copied into data/raw by hand that match their objects (size and ETag) are kept and
    recorded; Fetch() is then complete."""
    upload_competition(bucket)
    for name, data in FILES.items():
        (raw / name).write_bytes(data)
    assert fetch()
    assert bucket.server.log.count("GET", f"/{bucket.name}/") == 0
    assert fetch_task(refresh=False).complete()


def test_a_zip_member_outside_data_raw_is_refused(bucket: Bucket, raw: Path, luigi_config):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("train.csv", FILES["train.csv"])
        bundle.writestr("../escaped.csv", b"x\n")
    bucket.put("all.zip", archive.getvalue())
    luigi_config("s3", "files", json.dumps(["all.zip"]))
    fails(errors().ConfigError, "all.zip member", "'../escaped.csv'")
    assert snapshot(raw) == {}
    assert not (raw.parent / "escaped.csv").exists()


# --- errors: one line, data/raw as it was ---------------------------------------------------------


@pytest.fixture
def fetched(bucket: Bucket, raw: Path) -> dict[str, bytes]:
    """A first successful fetch: data/raw's contents (with its record) before the failing one."""
    upload_competition(bucket)
    assert fetch()
    return snapshot(raw)


def fails(error: type, *words: str) -> str:
    """Run Fetch(refresh=True).run() and check it raises `error` with a one-line message holding words."""
    with pytest.raises(error) as caught:
        fetch_task().run()
    message = str(caught.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message
    return message


@pytest.mark.parametrize("key", ["../outside.csv", "a/../../outside.csv", "/etc/passwd", ""])
def test_a_key_outside_data_raw_is_refused_before_any_request(bucket: Bucket, raw: Path, luigi_config, key: str):
    before = len(bucket.server.log.requests)
    luigi_config("s3", "files", json.dumps(["train.csv", key]))
    fails(errors().ConfigError, "luigi.cfg [s3] files", repr(key))
    assert len(bucket.server.log.requests) == before
    assert snapshot(raw) == {}
    assert not (raw.parent / "outside.csv").exists()


def test_files_may_be_listed_without_json(bucket: Bucket, raw: Path, luigi_config):
    upload_competition(bucket)
    luigi_config("s3", "files", "train.csv, test.csv sample_submission.csv")
    assert fetch()
    assert {name: (raw / name).read_bytes() for name in FILES} == FILES


def test_a_broken_files_list_is_one_line(bucket: Bucket, raw: Path, luigi_config):
    luigi_config("s3", "files", '["train.csv",')
    fails(errors().ConfigError, "luigi.cfg [s3] files", "not a JSON list")


def test_no_credentials(bucket: Bucket, raw: Path, fetched, monkeypatch: pytest.MonkeyPatch):
    bucket.put("train.csv", b"id,f,target\n9,9,9\n")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    fails(errors().ConfigError, "no usable AWS credentials", "AWS_PROFILE")
    assert snapshot(raw) == fetched


def test_access_denied(bucket: Bucket, raw: Path, fetched, monkeypatch: pytest.MonkeyPatch):
    """Credentials of an IAM user without any permission, with the server checking permissions."""
    import boto3

    bucket.put("train.csv", b"id,f,target\n9,9,9\n")
    iam = boto3.client("iam", endpoint_url=bucket.server.endpoint)
    iam.create_user(UserName=bucket.name)
    key = iam.create_access_key(UserName=bucket.name)["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    previous = _set_auth(bucket.server.endpoint, "0")
    try:
        fails(errors().S3Error, "access denied", bucket.name)
    finally:
        _set_auth(bucket.server.endpoint, previous)
    assert snapshot(raw) == fetched


def _set_auth(endpoint: str, count: str) -> str:
    """moto's switch for checking IAM permissions (after `count` requests); the previous value."""
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth", data=count.encode(), method="POST", headers={"Content-Type": "text/plain"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"]


def test_missing_bucket(bucket: Bucket, raw: Path, fetched, luigi_config):
    luigi_config("s3", "bucket", f"{bucket.name}-gone")
    fails(errors().S3Error, f"s3://{bucket.name}-gone: no such bucket", "[s3] bucket")
    assert snapshot(raw) == fetched


def test_missing_key_downloads_nothing(bucket: Bucket, raw: Path, fetched, luigi_config):
    """Every object is asked for before any download: a missing one stops the fetch before a GET."""
    bucket.put("train.csv", b"id,f,target\n9,9,9\n")
    luigi_config("s3", "files", json.dumps(["train.csv", "test.csv", "no-such-file.csv"]))
    gets = bucket.server.log.count("GET", f"/{bucket.name}/")
    fails(errors().S3Error, f"s3://{bucket.name}/comp/no-such-file.csv: no such object")
    assert bucket.server.log.count("GET", f"/{bucket.name}/") == gets
    assert snapshot(raw) == fetched


def test_network_failure_after_retries(bucket: Bucket, raw: Path, fetched, luigi_config, monkeypatch):
    import socket

    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{port}")
    luigi_config("s3", "max_attempts", "2")
    fails(errors().S3Error, "cannot reach S3", f"127.0.0.1:{port}", "after 2 attempts")
    assert snapshot(raw) == fetched


@pytest.mark.parametrize("kind", ["CRC32", "ETag"])
def test_checksum_mismatch(bucket: Bucket, raw: Path, fetched, kind: str):
    """The server sends other bytes than its checksum and ETag describe (corruption at rest or in
    transit): caught through the object's CRC32 when it has one, else through its ETag (MD5)."""
    import boto3
    from botocore.config import Config
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    key, data = f"{bucket.prefix}/test.csv", b"id,f\n3,0.5\n4,1.5\n"
    if kind == "CRC32":
        bucket.put("test.csv", data)
    else:  # an uploader that adds no checksum
        plain = boto3.client("s3", config=Config(request_checksum_calculation="when_required"))
        plain.put_object(Bucket=bucket.name, Key=key, Body=data)
    head = bucket.client.head_object(Bucket=bucket.name, Key=key, ChecksumMode="ENABLED")
    assert ("ChecksumCRC32" in head) == (kind == "CRC32")
    stored = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].buckets[bucket.name].keys[key]
    stored._value_buffer.seek(0)
    stored._value_buffer.write(b"X")  # same size; the stored ETag and checksum stay as they were
    fails(errors().S3Error, "test.csv: checksum mismatch")
    assert snapshot(raw) == fetched
    assert not [p for p in raw.iterdir() if p.name.startswith(".fetch-")]


def test_a_large_single_part_object_is_checked_with_its_crc32(bucket: Bucket, raw: Path, luigi_config):
    """Above 8 MB the GETs are ranged and botocore checks nothing: Fetch's own CRC32 passes the
    object, then catches a byte changed on the server."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    data = bytes(range(256)) * (36 * 1024)  # 9 MB in one PUT: a CRC32 of the whole object
    bucket.put("big.bin", data)
    luigi_config("s3", "files", json.dumps(["big.bin"]))
    assert fetch()
    assert (raw / "big.bin").read_bytes() == data
    stored = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].buckets[bucket.name].keys[f"{bucket.prefix}/big.bin"]
    stored._value_buffer.seek(5 << 20)
    stored._value_buffer.write(b"\x01")  # was 0
    (raw / "big.bin").write_bytes(b"edited")  # so that the next fetch downloads it again
    before = snapshot(raw)
    fails(errors().S3Error, "big.bin: checksum mismatch (CRC32 ")
    assert snapshot(raw) == before


def test_a_file_in_the_way_of_a_folder_fails_before_any_file_moves(bucket: Bucket, raw: Path, fetched, luigi_config):
    """Every file is downloaded and verified, then sub/test.csv cannot go where the file `sub`
    is: the new train.csv, verified first, is not moved into place either."""
    bucket.put("train.csv", b"id,f,target\n9,9,9\n")
    bucket.put("sub/test.csv", FILES["test.csv"])
    (raw / "sub").write_text("a file, not a folder\n")
    luigi_config("s3", "files", json.dumps(["train.csv", "sub/test.csv"]))
    before = snapshot(raw)
    fails(errors().DataError, "sub/test.csv: cannot create its folder")
    assert snapshot(raw) == before


def test_a_folder_where_a_file_goes_fails_before_any_file_moves(bucket: Bucket, raw: Path, fetched, luigi_config):
    bucket.put("train.csv", b"id,f,target\n9,9,9\n")
    (raw / "test.csv").unlink()
    (raw / "test.csv").mkdir()
    before = snapshot(raw)
    fails(errors().DataError, "test.csv: is (or would be) a folder")
    assert snapshot(raw) == before


def test_two_objects_giving_one_file_fail_before_any_file_moves(bucket: Bucket, raw: Path, luigi_config):
    """train.csv listed on its own and inside a zip: one line naming both, nothing in data/raw."""
    upload_competition(bucket)
    bucket.put("extra.zip", zipped({"train.csv": b"id,f,target\n9,9,9\n", "notes.csv": b"a\n1\n"}))
    luigi_config("s3", "files", json.dumps([*FILES, "extra.zip"]))
    fails(errors().DataError, "train.csv: comes from both")
    assert snapshot(raw) == {}


def test_a_changed_archive_may_not_give_a_file_another_object_gave(bucket: Bucket, raw: Path, fetched, luigi_config):
    """The check covers the files of objects that are not fetched again: the zip alone changes."""
    bucket.put("extra.zip", zipped({"notes.csv": b"a\n1\n"}))
    luigi_config("s3", "files", json.dumps([*FILES, "extra.zip"]))
    assert fetch()
    bucket.put("extra.zip", zipped({"test.csv": b"id,f\n9,9\n"}))
    before = snapshot(raw)
    fails(errors().DataError, "test.csv: comes from both")
    assert snapshot(raw) == before


def test_object_replaced_between_head_and_get(bucket: Bucket, raw: Path, fetched):
    """The object grows after Fetch asked for its ETag: the GET (If-Match) is refused."""
    bucket.put("test.csv", b"id,f\n3,0.5\n4,1.5\n")
    bucket.server.log.hooks.append(
        ("HEAD", bucket.path("test.csv"), lambda: bucket.put("test.csv", b"id,f\n3,0.5\n4,1.5\n5,2.5\n"))
    )
    fails(errors().S3Error, "test.csv: the object changed during the download", "make fetch")
    assert snapshot(raw) == fetched


def test_multipart_object_replaced_before_its_parts_arrive(bucket: Bucket, raw: Path, luigi_config):
    """A multipart object replaced by a smaller one after Fetch asked for its part size: the
    parallel ranged GETs (If-Match) are refused."""
    data = bytes(range(256)) * (45 * 1024)
    upload_in_parts(bucket, "big.bin", data)
    luigi_config("s3", "files", json.dumps(["big.bin"]))
    part_size = ("HEAD", f"{bucket.path('big.bin')}?partNumber=1", lambda: bucket.put("big.bin", data[:1000]))
    bucket.server.log.hooks.append(part_size)
    fails(errors().S3Error, "big.bin: the object changed during the download")
    assert snapshot(raw) == {}


def test_the_command_line_prints_one_error_line(bucket: Bucket, tmp_path: Path):
    """`python -m <package> Fetch` with a missing object: one ERROR line, no traceback, exit != 0."""
    files = json.dumps(list(FILES))
    pipeline = Pipeline(tmp_path / "cli", s3={"bucket": bucket.name, "prefix": "comp", "files": files})
    result = pipeline.run("Fetch", "--refresh")
    assert result.returncode != 0, describe(result)
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert errors == [
        f"ERROR: s3://{bucket.name}/comp/train.csv: no such object; check luigi.cfg [s3] prefix and files"
    ]
    assert "Traceback" not in result.stderr


# --- what data/raw holds afterwards ------------------------------------------------------------------


def _umask() -> int:
    umask = os.umask(0o22)
    os.umask(umask)
    return umask


def test_written_files_get_the_mode_a_plain_open_gives(bucket: Bucket, raw: Path, luigi_config, tmp_path: Path):
    """Fetched and unpacked files, .fetch.json, a run record and its patch, a file written through
    atomic_file (as the submission copy is) and a cache folder: 0666 (0777) less the umask, not
    the 0600 (0700) of mkstemp (mkdtemp)."""
    from importlib import import_module

    cache, record = import_module(f"{MODULE}.pipeline.storage.cache"), import_module(f"{MODULE}.pipeline.runs.record")
    expected = 0o666 & ~_umask()
    if expected == 0o600:
        pytest.skip("with this umask a private file is what a plain open() gives too")
    bucket.put("train.csv", FILES["train.csv"])
    bucket.put("test.csv.gz", gzip.compress(FILES["test.csv"]))
    luigi_config("s3", "files", json.dumps(["train.csv", "test.csv.gz"]))
    assert fetch()
    luigi_config("paths", "runs", tmp_path / "runs")
    record.write_record({"run_id": "r1", "tasks": {}}, "diff\n")
    copy = tmp_path / "submissions" / "submission.csv"
    with cache.atomic_file(copy) as temp:
        shutil.copyfile(raw / "train.csv", temp)
    written = [raw / "train.csv", raw / "test.csv", raw / ".fetch.json", tmp_path / "runs" / "r1.json"]
    written += [tmp_path / "runs" / "r1.patch", copy]
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in written} == {p.name: oct(expected) for p in written}
    with cache.atomic_folder(tmp_path / "cache" / "Task" / "abc") as folder:
        pass
    assert oct(stat.S_IMODE(folder.parent.joinpath("abc").stat().st_mode)) == oct(0o777 & ~_umask())


def test_what_killed_fetches_left_is_removed(bucket: Bucket, raw: Path):
    """Temporary downloads and a half-written .fetch.json of a process that is gone are deleted by
    the next fetch; those of a running process are not."""
    gone = 99999999  # above any pid_max
    leftovers = [f".fetch-{gone}-x1y2-train.csv", f"..fetch.json.{gone}-x1y2"]  # the latter: atomic_file's
    running = [f".fetch-{os.getpid()}-x1y2-train.csv", f"..fetch.json.{os.getpid()}-x1y2"]
    for name in leftovers + running:
        (raw / name).write_text("partial")
    upload_competition(bucket)
    assert fetch()
    assert sorted(p.name for p in raw.iterdir() if p.name.startswith(".")) == sorted([".fetch.json", *running])


# --- RawData and Push -------------------------------------------------------------------------------


def test_raw_data_fetches_when_a_bucket_is_set(bucket: Bucket, raw: Path):
    from importlib import import_module

    upload_competition(bucket)
    assert luigi.build(
        [import_module(f"{MODULE}.pipeline.data.raw").RawData()], local_scheduler=True, log_level="WARNING"
    )
    assert {name: (raw / name).read_bytes() for name in FILES} == FILES


@pytest.fixture
def submissions(bucket: Bucket, tmp_path: Path, luigi_config) -> Path:
    """submissions/ and runs/ in tmp_path; returns the submissions folder."""
    folder = tmp_path / "submissions"
    folder.mkdir()
    luigi_config("paths", "submissions", folder)
    (tmp_path / "runs").mkdir()
    luigi_config("paths", "runs", tmp_path / "runs")
    return folder


def run_record(run: str, submission: str) -> str:
    """A run record's JSON text, with only what Push reads (and a record must have)."""
    return json.dumps({"run_id": run, "tasks": {}, "submission": {"path": f"submissions/{submission}"}})


def push() -> None:
    from importlib import import_module

    import_module(f"{MODULE}.pipeline.runs.push").Push().run()


def pushed(bucket: Bucket) -> dict[str, bytes]:
    listing = bucket.client.list_objects_v2(Bucket=bucket.name, Prefix=f"{bucket.prefix}/submissions/")
    return {
        o["Key"].rpartition("/")[2]: bucket.client.get_object(Bucket=bucket.name, Key=o["Key"])["Body"].read()
        for o in listing.get("Contents", [])
    }


def test_push_uploads_the_newest_submission_and_its_run_record(bucket: Bucket, submissions: Path, tmp_path: Path):
    old, new = submissions / "submission-old.csv", submissions / "submission-new.csv"
    old.write_text("id,target\n1,0.1\n")
    new.write_text("id,target\n1,0.9\n")
    os.utime(old, ns=(1, 1))
    runs = tmp_path / "runs"
    (runs / "r1.json").write_text(run_record("r1", "submission-new.csv"))
    (runs / "r1.patch").write_text("diff\n")
    (runs / "r0.json").write_text(run_record("r0", "submission-old.csv"))
    push()
    assert pushed(bucket) == {
        "submission-new.csv": b"id,target\n1,0.9\n",
        "r1.json": (runs / "r1.json").read_bytes(),
        "r1.patch": b"diff\n",
    }


def test_push_without_a_run_record_pushes_the_submission_and_says_so(bucket: Bucket, submissions: Path, capsys):
    (submissions / "submission-a.csv").write_text("id,target\n1,0.9\n")
    push()
    assert set(pushed(bucket)) == {"submission-a.csv"}
    assert "no run record" in capsys.readouterr().out


def test_an_unreadable_run_record_stops_push_before_any_upload(bucket: Bucket, submissions: Path, tmp_path: Path):
    """As it stops `make runs`: one line naming the record, and nothing pushed."""
    (submissions / "submission-a.csv").write_text("id,target\n1,0.9\n")
    (tmp_path / "runs" / "r1.json").write_text(run_record("r1", "submission-a.csv"))
    (tmp_path / "runs" / "r2.json").write_text('{"run_id": "r2", ')
    with pytest.raises(errors().DataError) as caught:
        push()
    message = str(caught.value)
    assert "r2.json: not a readable run record" in message and "\n" not in message
    assert pushed(bucket) == {}


def test_push_errors(bucket: Bucket, submissions: Path, luigi_config):
    with pytest.raises(errors().DataError, match="no submission file to push"):
        push()
    (submissions / "submission-a.csv").write_text("id,target\n1,0.9\n")
    luigi_config("s3", "bucket", "")
    with pytest.raises(errors().ConfigError, match=r"\[s3\] bucket is empty"):
        push()
