"""Fetch: the competition files from S3 into data/raw, verified, atomically, only when changed.

A name of [s3] files may be a pattern (`*`, every object directly under the prefix: every table
of the competition; `data/*.csv` those of a folder); a refresh lists the prefix and records what
each pattern matched in the state file, so an up-to-date run still makes no request. Every
configured file is first asked for with a HEAD (size, ETag, checksum). A file whose object has
the ETag and size recorded in `data/raw/.fetch.json`, and whose local copy still has the recorded
size and mtime, is not downloaded again; nor is a file already in data/raw with the object's size
and checksum (computed locally). The others are downloaded (multipart, in parallel) to hidden
temporary files in data/raw, checked against the object's size and its CRC32 checksum or ETag,
unpacked when compressed, and renamed into place only once every file is good: a failure leaves
data/raw as it was.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import gzip
import hashlib
import json
import os
import re
import shutil
import sys
import threading
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

import luigi

from ..config import raw_dir, s3, shown
from ..errors import ConfigError, DataError, S3Error
from ..services import s3 as remote
from ..storage.cache import atomic_file, remove_abandoned, temp_file
from ..storage.disk import sync_file, sync_folder, write_error

STATE = ".fetch.json"
TEMP_PREFIX = ".fetch-"
PROGRESS_FROM = 8 << 20  # objects of this size or more show a progress line
MB = 1 << 20


# --- what is configured and what was fetched ---------------------------------------------------


@dataclass
class Planned:
    """One configured file: its name relative to the prefix, object key and URL."""

    name: str
    key: str
    url: str


def configured_files() -> list[str]:
    """luigi.cfg [s3] files: a JSON list of names, or names separated by commas or spaces."""
    text = s3().files.strip()
    if not text.startswith("["):
        return [name for name in re.split(r"[,\s]+", text) if name]
    try:
        names = json.loads(text)
    except ValueError as error:
        raise ConfigError(f"luigi.cfg [s3] files = {text}: not a JSON list ({error})") from None
    if not all(isinstance(name, str) for name in names):
        raise ConfigError(f"luigi.cfg [s3] files = {text}: list file names as strings")
    return names


LISTING = "listing"  # in the state file: the names each pattern of [s3] files matched when last listed


def is_pattern(name: str) -> bool:
    """Whether a name of [s3] files is a glob pattern (`*`, `*.csv`, `data/*`)."""
    return any(c in name for c in "*?[")


def planned(listing: dict[str, list[str]] | None = None) -> list[Planned]:
    """The configured files, patterns replaced by the names they matched (`listing`), each checked to
    stay inside data/raw (before any network call)."""
    folder = raw_dir()
    entries = configured_files()
    if not entries:
        raise ConfigError('luigi.cfg [s3] files is empty: list the competition files, e.g. ["train.csv"], or *')
    files = list(dict.fromkeys(n for e in entries for n in ((listing or {}).get(e, []) if is_pattern(e) else [e])))
    for name in files:
        remote.local_path(name, folder)
        if name.endswith(".gz"):
            remote.local_path(name.removesuffix(".gz"), folder)
    return [Planned(name, remote.key_of(name), remote.url(remote.key_of(name))) for name in files]


def matches(name: str, pattern: str) -> bool:
    """Whether an object's name (relative to the prefix) matches a pattern, folder by folder as a
    shell's glob does: `*` is every object directly under the prefix, not those in its folders
    (`make push`'s submissions/, a cache on S3)."""
    return name.count("/") == pattern.count("/") and fnmatch.fnmatchcase(name, pattern)


def listed(client: Any, patterns: list[str]) -> dict[str, list[str]]:
    """The objects under [s3] prefix that each pattern matches (names relative to the prefix); a
    pattern that matches none is a ConfigError."""
    base = remote.key_of("")
    names = []
    with remote.errors_as_one_line(client, remote.url(base)):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=remote.bucket(), Prefix=base):
            names += [item["Key"][len(base) :] for item in page.get("Contents", [])]
    names = sorted(name for name in names if name and not name.endswith("/"))
    found = {pattern: [name for name in names if matches(name, pattern)] for pattern in patterns}
    for pattern, matched in found.items():
        if not matched:
            raise ConfigError(f"luigi.cfg [s3] files: {pattern!r} matches no object under {remote.url(base)}")
    return found


def read_state(folder: Path, name: str = STATE) -> dict[str, Any]:
    """A download record in folder (this one's, or Download's); empty when missing or unreadable."""
    try:
        return json.loads((folder / name).read_text())
    except (OSError, ValueError):
        return {}


def _stat(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _unchanged_locally(entry: dict[str, Any], folder: Path) -> bool:
    """Whether every file an object was unpacked to is still there as it was written."""
    try:
        return bool(entry["files"]) and all(_stat(folder / name) == written for name, written in entry["files"].items())
    except (OSError, KeyError, TypeError):
        return False


# --- verifying while downloading ---------------------------------------------------------------


class ETag:
    """S3's ETag of bytes fed in file order: the MD5 for a single-part upload; for a multipart
    upload of `part_size` parts, the MD5 of the parts' MD5s followed by '-<number of parts>'."""

    def __init__(self, part_size: int | None = None) -> None:
        self.part_size = part_size
        self.parts: list[bytes] = []
        self.current = hashlib.md5(usedforsecurity=False)
        self.filled = 0

    def update(self, data: bytes | memoryview) -> None:
        data = memoryview(data)
        if self.part_size is None:
            self.current.update(data)
            return
        while data:
            chunk, data = data[: self.part_size - self.filled], data[self.part_size - self.filled :]
            self.current.update(chunk)
            self.filled += len(chunk)
            if self.filled == self.part_size:
                self.parts.append(self.current.digest())
                self.current, self.filled = hashlib.md5(usedforsecurity=False), 0

    def final(self) -> str:
        if self.part_size is None:
            return self.current.hexdigest()
        parts = self.parts + ([self.current.digest()] if self.filled else [])
        return f"{hashlib.md5(b''.join(parts), usedforsecurity=False).hexdigest()}-{len(parts)}"


class CRC32:
    """S3's full-object CRC32 checksum (base64 of the big-endian value) of bytes fed in order;
    about three times cheaper to compute than the MD5s of the ETag."""

    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes | memoryview) -> None:
        self.value = zlib.crc32(data, self.value)

    def final(self) -> str:
        return base64.b64encode(self.value.to_bytes(4, "big")).decode()


class HashingFile:
    """A seekable file for s3transfer that hashes what it receives in file order.

    Parts arrive in any order. A thread of its own hashes the bytes as soon as everything before
    them is written, reading them back from the file (unbuffered, so reads see every write), so
    checking the checksum needs no second pass over the file and never holds up the writes.
    """

    def __init__(self, path: Path, digest: ETag | CRC32) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        self._position = 0
        self._hashed = 0
        self._written: dict[int, int] = {}  # offset -> length of writes not hashed yet
        self._changed = threading.Condition()
        self._closing = False
        self.digest = digest
        self._hasher = threading.Thread(target=self._hash_in_order, daemon=True)
        self._hasher.start()

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._position = os.lseek(self._fd, offset, whence)
        return self._position

    def tell(self) -> int:
        return self._position

    def write(self, data: bytes) -> int:
        view, offset = memoryview(data), self._position
        done = 0
        while done < len(view):
            done += os.pwrite(self._fd, view[done:], offset + done)
        self._position += len(view)
        with self._changed:
            self._written[offset] = max(len(view), self._written.get(offset, 0))
            self._changed.notify()
        return len(view)

    def _hash_in_order(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._hashed in self._written or self._closing)
                if self._hashed not in self._written:
                    return
                length = self._written.pop(self._hashed)
            self.digest.update(os.pread(self._fd, length, self._hashed))
            self._hashed += length

    def _stop(self) -> None:
        with self._changed:
            self._closing = True
            self._changed.notify()
        self._hasher.join()

    def finish(self) -> str:
        """Hash whatever is left (writes that overlapped, after a retry) and close; the checksum."""
        self._stop()
        while chunk := os.pread(self._fd, 8 * MB, self._hashed):
            self.digest.update(chunk)
            self._hashed += len(chunk)
        os.close(self._fd)
        return self.digest.final()

    def close(self) -> None:
        self._stop()
        with contextlib.suppress(OSError):
            os.close(self._fd)


class Progress:
    """One stderr line per tenth of a large object (updated in place on a terminal)."""

    def __init__(self, name: str, size: int) -> None:
        self.name, self.size = name, size
        self.done = 0
        self.shown = -1
        self.started = time.perf_counter()
        self.lock = threading.Lock()
        self.tty = sys.stderr.isatty()

    def __call__(self, amount: int) -> None:
        with self.lock:
            self.done += amount
            tenth = self.done * 10 // max(self.size, 1)
            if tenth == self.shown:
                return
            self.shown = tenth
            seconds = max(time.perf_counter() - self.started, 1e-6)
            line = (
                f"fetch {self.name}: {self.done * 100 // max(self.size, 1):3d}% "
                f"{self.done / MB:.0f}/{self.size / MB:.0f} MB, {self.done / MB / seconds:.0f} MB/s"
            )
            start, end = ("\r", "\n" if self.done >= self.size else "") if self.tty else ("", "\n")
            os.write(sys.stderr.fileno(), f"{start}{line}{end}".encode())


# --- one object ---------------------------------------------------------------------------------


class Checksum(NamedTuple):
    """What a download is checked against: S3's value, and the part size an ETag is made of."""

    name: str
    expected: str
    part_size: int | None = None

    def digest(self) -> ETag | CRC32:
        """A new digest that computes the value from the bytes fed in order."""
        return CRC32() if self.name == "CRC32" else ETag(self.part_size)


@dataclass
class Download:
    """A verified object in a temporary file, and the files it becomes in data/raw."""

    planned: Planned
    head: dict[str, Any]
    check: Checksum | None
    temps: dict[str, Path] = field(default_factory=dict)  # final name -> temporary file


def checksum(client: Any, planned: Planned, head: dict[str, Any]) -> Checksum | None:
    """How to check a download; None when S3 gives nothing to check but the size.

    The object's full-object CRC32 when it has one (boto3 and the AWS CLI add it on upload),
    else its ETag when that is made of MD5s (for a multipart upload, this asks S3 for the part
    size: call it once per object).
    """
    crc, kind = head.get("ChecksumCRC32", ""), head.get("ChecksumType")
    single_part = "-" not in head["ETag"]  # its checksum is of the whole object, whatever the type says
    if crc and "-" not in crc and (kind == "FULL_OBJECT" or single_part):
        return Checksum("CRC32", crc)
    if _md5_etag(head):
        return Checksum("ETag", head["ETag"].strip('"'), _part_size(client, planned, head))
    return None


def _md5_etag(head: dict[str, Any]) -> bool:
    """Whether the ETag is derived from MD5s: not with SSE-KMS or customer-key encryption, nor on
    a store whose ETags have another form."""
    encrypted = head.get("SSECustomerAlgorithm") or str(head.get("ServerSideEncryption", "")).startswith("aws:kms")
    return not encrypted and re.fullmatch(r"[0-9a-f]{32}(-[0-9]+)?", head["ETag"].strip('"')) is not None


def _part_size(client: Any, planned: Planned, head: dict[str, Any]) -> int | None:
    """The part size of a multipart upload (from a HEAD of part 1), None for a single part."""
    if "-" not in head["ETag"]:
        return None
    return client.head_object(Bucket=remote.bucket(), Key=planned.key, PartNumber=1)["ContentLength"]


def _transfer_config() -> Any:
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=8 * MB, multipart_chunksize=8 * MB, max_concurrency=10)


def _if_match(expected: dict[str, str]):
    """A botocore hook that sends If-Match with every GET of a key we hold an ETag for, so an
    object replaced during the download fails with 412 instead of mixing two versions."""

    def add(params: dict[str, Any], **_: Any) -> None:
        etag = expected.get(params.get("Key", ""))
        if etag and "IfMatch" not in params:
            params["IfMatch"] = etag

    return add


def download(manager: Any, item: Download, temp: Path) -> None:
    """Download one object into temp and check its size and checksum; S3Error when they differ."""
    from s3transfer.subscribers import BaseSubscriber

    planned, head, check = item.planned, item.head, item.check
    size = head["ContentLength"]
    progress = Progress(planned.name, size) if size >= PROGRESS_FROM else None

    class Known(BaseSubscriber):
        """Hands s3transfer the size and ETag from our HEAD, so it sends no HEAD of its own."""

        def on_queued(self, future: Any, **_: Any) -> None:
            future.meta.provide_transfer_size(size)
            if hasattr(future.meta, "provide_object_etag"):
                future.meta.provide_object_etag(head["ETag"])

        def on_progress(self, future: Any, bytes_transferred: int, **_: Any) -> None:
            if progress:
                progress(bytes_transferred)

    target = HashingFile(temp, check.digest() if check else CRC32())  # without a check, nothing is compared
    try:
        manager.download(remote.bucket(), planned.key, target, subscribers=[Known()]).result()
    except BaseException:
        target.close()
        raise
    got = target.finish()
    written = temp.stat().st_size
    if written != size:
        raise S3Error(f"{planned.url}: downloaded {written} bytes, the object has {size}; run `make fetch` again")
    if check and got != check.expected:
        raise S3Error(
            f"{planned.url}: checksum mismatch ({check.name} {check.expected} from S3, "
            f"{got} from the downloaded bytes); run `make fetch` again"
        )


# --- unpacking ----------------------------------------------------------------------------------


def _temp_in(folder: Path, name: str, temps: list[Path]) -> Path:
    """A new hidden temporary file in folder, added to temps (deleted if the fetch fails)."""
    path = temp_file(folder, f"{TEMP_PREFIX}{os.getpid()}-", f"-{Path(name).name}")
    temps.append(path)
    return path


def unpack(item: Download, archive: Path, folder: Path, temps: list[Path]) -> None:
    """The files an object becomes: itself, a .gz's content, or a .zip's members."""
    name = item.planned.name
    if name.endswith(".gz"):
        item.temps[name.removesuffix(".gz")] = out = _temp_in(folder, name, temps)
        try:
            with gzip.open(archive, "rb") as source, open(out, "wb") as sink:
                shutil.copyfileobj(source, sink, 8 * MB)
        except (OSError, EOFError, zlib.error) as error:
            raise _unpack_error(item, error, folder / name.removesuffix(".gz")) from None
        archive.unlink()
    elif name.endswith(".zip"):
        try:
            with zipfile.ZipFile(archive) as bundle:
                for final, member in zip_members(bundle, folder, f"{item.planned.url} member").items():
                    item.temps[final] = out = _temp_in(folder, final, temps)
                    with bundle.open(member) as source, open(out, "wb") as sink:
                        shutil.copyfileobj(source, sink, 8 * MB)
        except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as error:
            raise _unpack_error(item, error, folder) from None
        archive.unlink()
    else:
        item.temps[name] = archive


def _unpack_error(item: Download, error: BaseException, where: Path) -> Exception:
    """A full disk while unpacking is a WriteError; anything else means a truncated or damaged archive."""
    return write_error(error, where) or DataError(
        f"{item.planned.url}: cannot unpack ({error}); the archive is truncated or damaged"
    )


def zip_members(bundle: zipfile.ZipFile, folder: Path, what: str) -> dict[str, zipfile.ZipInfo]:
    """A zip's files by their names in data/raw: their paths in the archive, less the one folder
    that holds them all when there is one (an archive made by zipping a folder), so that
    `competition.zip` holding `competition/train.csv` gives data/raw/train.csv. macOS's
    `__MACOSX/` metadata is left out; a member that would land outside folder is refused."""
    files = [m for m in bundle.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX/")]
    parts = {m.filename: PurePosixPath(m.filename).parts for m in files}
    for member in files:
        remote.local_path(member.filename, folder, what=what)
    one_folder = len({p[0] for p in parts.values()}) == 1 and all(len(p) > 1 for p in parts.values())
    named = {"/".join(parts[m.filename][1:]) if one_folder else m.filename: m for m in files}
    for name in named:
        remote.local_path(name, folder, what=what)
    return named


def _one_object_per_file(folder: Path, items: list[Download], kept: dict[str, str]) -> None:
    """Each file in data/raw comes from one object: two that give the same file (train.csv listed
    on its own and inside a zip) would leave whichever came last, so the fetch stops first."""
    source = dict(kept)
    for item in items:
        for name in item.temps:
            other = source.setdefault(name, item.planned.url)
            if other != item.planned.url:
                raise DataError(
                    f"{shown(folder / name)}: comes from both {other} and {item.planned.url}; "
                    "keep one of them in luigi.cfg [s3] files"
                )


def _make_folders(folder: Path, names: list[str]) -> None:
    """Create the folders the files go into, before any file is moved into place: a folder where
    a file goes, or a file where a folder goes, fails the fetch while data/raw is as it was."""
    parents = {str(parent) for name in names for parent in PurePosixPath(name).parents}
    for name in names:
        if name in parents or (folder / name).is_dir():
            raise DataError(f"{shown(folder / name)}: is (or would be) a folder, so the fetched file cannot go there")
    for name in names:
        try:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DataError(f"{shown(folder / name)}: cannot create its folder ({error.strerror or error})") from None


def _remove_abandoned(folder: Path) -> None:
    """Delete what killed fetches left in data/raw: their temporary downloads and the temporary
    file of a `.fetch.json` they were writing."""
    remove_abandoned(folder, TEMP_PREFIX)
    remove_abandoned(folder, f".{STATE}.")


def already_there(planned: Planned, head: dict[str, Any], check: Checksum | None, folder: Path) -> bool:
    """Whether a file put into data/raw some other way (or fetched before the record was lost)
    is the object already: same size and same ETag, computed locally, so no download."""
    path = folder / planned.name
    if planned.name.endswith((".gz", ".zip")) or not path.is_file() or path.stat().st_size != head["ContentLength"]:
        return False
    if not check:
        return False
    digest = check.digest()
    with open(path, "rb") as f:
        while block := f.read(8 * MB):
            digest.update(block)
    return digest.final() == check.expected


# --- the task -----------------------------------------------------------------------------------


class Fetch(luigi.Task):
    """The files listed in luigi.cfg [s3] files, from s3://bucket/prefix/ into data/raw.

    Done, without any network call, when every file is there as the last fetch left it; so an
    up-to-date `make all` never contacts S3. `make fetch` (refresh) asks S3 whether anything
    changed and downloads only what did.
    """

    refresh = luigi.BoolParameter(default=False, description="ask S3 for changes even when the files are there")

    def output(self) -> luigi.LocalTarget:
        """The record of what was fetched (the files themselves are in data/raw)."""
        return luigi.LocalTarget(raw_dir() / STATE)

    def complete(self) -> bool:
        if self.refresh and not getattr(self, "_refreshed", False):
            return False
        folder, state = raw_dir(), read_state(raw_dir())
        listing = state.get(LISTING, {})
        if any(is_pattern(entry) and entry not in listing for entry in configured_files()):
            return False
        return all(_unchanged_locally(state.get(p.url, {}), folder) for p in planned(listing))

    def run(self) -> None:
        folder = raw_dir()
        folder.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(folder)
        planned()  # the names checked before any request
        client = remote.client()
        state = read_state(folder)
        patterns = [entry for entry in configured_files() if is_pattern(entry)]
        if patterns:
            state[LISTING] = listed(client, patterns)
        else:
            state.pop(LISTING, None)
        files = planned(state.get(LISTING))
        stale = []
        for p in files:
            with remote.errors_as_one_line(client, p.url):
                head = client.head_object(Bucket=remote.bucket(), Key=p.key, ChecksumMode="ENABLED")
                if self._unchanged(head, state.get(p.url, {}), folder):
                    continue
                check = checksum(client, p, head)  # once: for a multipart ETag it costs a HEAD
                if already_there(p, head, check, folder):
                    state[p.url] = self._entry(head, {p.name: _stat(folder / p.name)})
                else:
                    stale.append(Download(p, head, check))
        if stale:
            fetching = {item.planned.url for item in stale}
            unfetched = [p.url for p in files if p.url not in fetching]
            kept = {name: url for url in unfetched for name in state.get(url, {}).get("files", {})}
            self._download_all(client, stale, state, folder, kept)
        if state != read_state(folder):
            with atomic_file(folder / STATE) as temp:
                temp.write_text(json.dumps(state, indent=1, sort_keys=True))
        self._refreshed = True

    def on_success(self) -> Any:
        self._refreshed = False  # Luigi reuses task instances: the next build asks S3 again
        return super().on_success()

    @staticmethod
    def _unchanged(head: dict[str, Any], entry: dict[str, Any], folder: Path) -> bool:
        """Whether the last fetch got this very object and its files are still as it left them."""
        same_object = entry.get("etag") == head["ETag"] and entry.get("size") == head["ContentLength"]
        return same_object and _unchanged_locally(entry, folder)

    @staticmethod
    def _entry(head: dict[str, Any], files: dict[str, dict[str, int]]) -> dict[str, Any]:
        return {"etag": head["ETag"], "size": head["ContentLength"], "files": files}

    def _download_all(
        self, client: Any, items: list[Download], state: dict[str, Any], folder: Path, kept: dict[str, str]
    ) -> None:
        """Download and unpack every stale object to temporary files, then move them all into
        place; on any failure delete the temporary files and leave data/raw as it was. kept: the
        files of the configured objects not fetched again, and the URL of each one's object."""
        from s3transfer.manager import TransferManager

        temps: list[Path] = []
        hook = _if_match({item.planned.key: item.head["ETag"] for item in items})
        client.meta.events.register("before-parameter-build.s3.GetObject", hook)
        try:
            with TransferManager(client, _transfer_config()) as manager:
                for item in items:
                    archive = _temp_in(folder, item.planned.name, temps)
                    with remote.errors_as_one_line(client, item.planned.url):
                        download(manager, item, archive)
                    unpack(item, archive, folder, temps)
            _one_object_per_file(folder, items, kept)
            _make_folders(folder, [name for item in items for name in item.temps])
            for item in items:
                for temp in item.temps.values():
                    sync_file(temp)  # on the disk before its name is final
            for item in items:
                written = {}
                for name, temp in item.temps.items():
                    os.replace(temp, folder / name)
                    written[name] = _stat(folder / name)
                    sync_folder((folder / name).parent)
                state[item.planned.url] = self._entry(item.head, written)
        except BaseException as error:
            for temp in temps:
                temp.unlink(missing_ok=True)
            refused = write_error(error, folder)
            if refused is not None:
                raise refused from None
            raise
        finally:
            client.meta.events.unregister("before-parameter-build.s3.GetObject", hook)
        print(f"fetched {', '.join(item.planned.name for item in items)} into {shown(folder)}", flush=True)
