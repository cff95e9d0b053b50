"""The cache on S3 (`[paths] cache = s3://bucket/prefix`), for workers on several machines.

A result is `<prefix>/<Task>/<hash>/manifest.json` plus its files under
`<prefix>/<Task>/<hash>/run-<host>-<pid>-<random>/`, a prefix of the run that uploaded them.
The manifest names that prefix (`"objects"`) and is written last, with `If-None-Match: *`: it
exists only once every file is up, and when two machines finish the same result the first
manifest wins; the other run deletes its own objects and takes the winner's. A run killed
mid-upload leaves objects but no manifest, so nothing looks done; the next run that publishes the
same result deletes every run prefix its manifest does not name, and `make gc` deletes such
prefixes of any result once they are old (runs/gc.py).

Each machine keeps a local mirror (config.cache_dir()) of the results it built or read, keyed
by the same immutable hash, so nothing there ever needs invalidating: `complete()` asks S3 one
HEAD for a result the mirror lacks, and data is downloaded only when a task reads it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import socket
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import ConfigError, S3Error

MANIFEST = "manifest.json"
RUN_PREFIX = "run-"
_MISSING = ("404", "NoSuchKey", "NotFound")
_TAKEN = ("412", "PreconditionFailed", "409", "ConditionalRequestConflict")


def parse(url: str) -> tuple[str, str]:
    """(bucket, prefix) of an `s3://bucket/prefix` URL; a ConfigError names a URL without bucket."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if not bucket:
        raise ConfigError(f"luigi.cfg [paths] cache = {url}: name a bucket, as in s3://bucket/prefix/cache")
    return bucket, prefix.strip("/")


@dataclass(frozen=True)
class Stored:
    """One object of the cache's layout: a result's manifest (`run` empty) or a file under one of
    its run prefixes, with its size and when it was written."""

    family: str
    hash: str
    run: str
    name: str
    size: int
    modified: datetime

    @property
    def result(self) -> tuple[str, str]:
        return self.family, self.hash


class S3Results:
    """The results under one S3 prefix: what the cache needs (exists, manifest, download, publish)
    and what the run tools need (stored, sha256, remove)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.bucket, self.prefix = parse(url)
        self._local = threading.local()  # one client per thread: cheap, and safe with Train's threads
        self._manifests: dict[tuple[str, str], dict[str, Any] | None] = {}  # done; a manifest never changes

    def _client(self) -> Any:
        from ..services import s3

        if getattr(self._local, "pid", None) != os.getpid():  # a forked process makes its own
            self._local.client, self._local.pid = s3.client(), os.getpid()
        return self._local.client

    def _key(self, family: str, hash_: str, name: str = "") -> str:
        base = f"{self.prefix}/{family}/{hash_}" if self.prefix else f"{family}/{hash_}"
        return f"{base}/{name}" if name else base

    @contextlib.contextmanager
    def _errors(self, key: str) -> Iterator[Any]:
        """The client, for a block whose botocore errors become one line naming the object."""
        from ..services import s3

        client = self._client()
        with s3.errors_as_one_line(client, f"s3://{self.bucket}/{key}"):
            yield client

    # -- the interface --

    def exists(self, family: str, hash_: str) -> bool:
        """Whether the result is done: one HEAD of its manifest, no data read."""
        from botocore.exceptions import ClientError

        if (family, hash_) in self._manifests:  # seen in this process: a manifest stays
            return True
        key = self._key(family, hash_, MANIFEST)
        with self._errors(key) as client:
            try:
                client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as error:
                if _code(error) in _MISSING:
                    return False
                raise
        self._manifests.setdefault((family, hash_), None)
        return True

    def manifest(self, family: str, hash_: str) -> dict[str, Any] | None:
        """The result's manifest (one GET), or None when it is not done."""
        from botocore.exceptions import ClientError

        if self._manifests.get((family, hash_)) is not None:
            return self._manifests[family, hash_]
        key = self._key(family, hash_, MANIFEST)
        with self._errors(key) as client:
            try:
                body = client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            except ClientError as error:
                if _code(error) in _MISSING:
                    return None
                raise
        self._manifests[family, hash_] = json.loads(body)
        return self._manifests[family, hash_]

    def download(self, family: str, hash_: str, folder: Path) -> bool:
        """Copy a done result into an empty folder, the manifest last; False when it is not done."""
        manifest = self.manifest(family, hash_)
        if manifest is None:
            return False
        for name in manifest["files"]:
            key = self._key(family, hash_, f"{manifest['objects']}/{name}")
            with self._errors(key) as client:
                client.download_file(self.bucket, key, str(folder / name))
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
        return True

    def publish(self, family: str, hash_: str, folder: Path) -> bool:
        """Upload a finished result folder: its files under a prefix of this run, then the manifest
        if none is there yet. True when this run's manifest won; otherwise the folder is replaced
        by the winner's result. The manifest in the folder becomes the one on S3 either way."""
        from botocore.exceptions import ClientError

        run = f"{RUN_PREFIX}{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        manifest = json.loads((folder / MANIFEST).read_bytes())
        for name in manifest["files"]:
            key = self._key(family, hash_, f"{run}/{name}")
            with self._errors(key) as client:
                client.upload_file(str(folder / name), self.bucket, key)
        manifest["objects"] = run
        body = (json.dumps(manifest, indent=2, default=str) + "\n").encode()
        key = self._key(family, hash_, MANIFEST)
        with self._errors(key) as client:
            try:
                client.put_object(Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*")
                won = True
            except ClientError as error:
                if _code(error) not in _TAKEN:  # another run's manifest is there (or being written)
                    raise
                won = False
        if won:
            (folder / MANIFEST).write_bytes(body)
        else:
            for path in folder.iterdir():
                path.unlink()
            if not self.download(family, hash_, folder):
                raise S3Error(f"s3://{self.bucket}/{key}: refused as already there, yet not found; run again")
        self.clean(family, hash_)
        return won

    def clean(self, family: str, hash_: str) -> int:
        """Delete the run prefixes of a done result that its manifest does not name (what killed
        or losing runs uploaded); the number of objects deleted."""
        manifest = self.manifest(family, hash_)
        if manifest is None:
            return 0
        base = self._key(family, hash_) + "/"
        stale, client = [], self._client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base + RUN_PREFIX):
            for item in page.get("Contents", []):
                if item["Key"][len(base) :].split("/")[0] != manifest["objects"]:
                    stale.append({"Key": item["Key"]})
        for start in range(0, len(stale), 1000):
            client.delete_objects(Bucket=self.bucket, Delete={"Objects": stale[start : start + 1000], "Quiet": True})
        return len(stale)

    # -- for make gc and make verify --

    def where(self, family: str, hash_: str, run: str = "") -> str:
        """The s3:// URL of a result (or of one of its run prefixes), for messages."""
        return f"s3://{self.bucket}/{self._key(family, hash_, run)}" + ("/" if run else "")

    def stored(self) -> list[Stored]:
        """Every object of the layout under the prefix (`<Task>/<hash>/manifest.json` and
        `<Task>/<hash>/run-.../<file>`), from one listing (a request per 1000 objects, no data
        read); keys of any other shape are left out."""
        base = f"{self.prefix}/" if self.prefix else ""
        found = []
        with self._errors(base) as client:
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base):
                for item in page.get("Contents", []):
                    parts = item["Key"][len(base) :].split("/")
                    manifest = len(parts) == 3 and parts[2] == MANIFEST
                    if not manifest and (len(parts) < 4 or not parts[2].startswith(RUN_PREFIX)):
                        continue
                    run, name = ("", MANIFEST) if manifest else (parts[2], "/".join(parts[3:]))
                    found.append(Stored(parts[0], parts[1], run, name, item["Size"], item["LastModified"]))
        return found

    def sha256(self, family: str, hash_: str, run: str, name: str) -> str:
        """The sha256 of one file of a result, read as a stream (nothing written to disk)."""
        key = self._key(family, hash_, f"{run}/{name}")
        digest = hashlib.sha256()
        with self._errors(key) as client:
            for block in client.get_object(Bucket=self.bucket, Key=key)["Body"].iter_chunks(1 << 20):
                digest.update(block)
        return digest.hexdigest()

    def remove(self, objects: Iterable[Stored]) -> int:
        """Delete objects, the manifests among them first: a result being deleted stops looking
        done before any of its files goes. The number of objects deleted."""
        items = list(objects)
        manifests = [item for item in items if not item.run]
        for item in manifests:
            self._manifests.pop(item.result, None)
        files = [item for item in items if item.run]
        for batch in (manifests, files):
            keys = [self._key(item.family, item.hash, f"{item.run}/{item.name}".lstrip("/")) for item in batch]
            for start in range(0, len(keys), 1000):
                chunk = keys[start : start + 1000]
                with self._errors(chunk[0]) as client:
                    answer = client.delete_objects(
                        Bucket=self.bucket, Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True}
                    )
                if answer.get("Errors"):
                    error = answer["Errors"][0]
                    raise S3Error(f"s3://{self.bucket}/{error['Key']}: not deleted ({error.get('Code')})")
        return len(items)


def _code(error: Any) -> str:
    response = getattr(error, "response", {}) or {}
    return str(response.get("Error", {}).get("Code") or response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


_stores: dict[str, S3Results] = {}


def results(url: str) -> S3Results:
    """The store of a cache URL, one per process (its clients are kept)."""
    if url not in _stores:
        _stores[url] = S3Results(url)
    return _stores[url]
