"""Unpacking a zip while it downloads: each member is inflated as its bytes arrive.

A zip's members follow one another, each behind a local header, so a thread can inflate them
from the file the download is still writing; on a network slower than inflating, the files are
ready when the last byte arrives instead of a pass over the archive later. The archive's
central directory (read once it is whole) has the last word: every member must be there with
its CRC-32 and size, or the result is thrown away and the archive unpacked the ordinary way.
Encrypted, zip64 and other unusual members likewise fall back to that.
"""

from __future__ import annotations

import os
import shutil
import struct
import threading
import time
import zipfile
import zlib
from pathlib import Path

from ..services.s3 import local_path

LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")  # signature ... file name length, extra length
LOCAL_SIGNATURE, DESCRIPTOR_SIGNATURE = 0x04034B50, 0x08074B50
CHUNK = 1 << 20


class UnsupportedError(Exception):
    """Something this reader does not handle: the archive is unpacked the ordinary way instead."""


class Growing:
    """Reads a file another thread is still writing: a read waits until bytes arrive, and
    returns b"" only once the writer is done and every byte has been read."""

    def __init__(self, path: Path, done: threading.Event) -> None:
        self.path, self.done = path, done
        self.fd: int | None = None
        self.position = 0
        self.back = b""

    def read(self, size: int) -> bytes:
        if self.back:
            data, self.back = self.back[:size], self.back[size:]
            return data
        while True:
            finished = self.done.is_set()  # before reading: a write that ends just after is read next time
            if self.fd is None and self.path.exists():
                self.fd = os.open(self.path, os.O_RDONLY)
            data = os.pread(self.fd, size, self.position) if self.fd is not None else b""
            if data or finished:
                self.position += len(data)
                return data
            time.sleep(0.002)

    def exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            more = self.read(size - len(data))
            if not more:
                raise UnsupportedError("the archive ended inside a member")
            data += more
        return data

    def unread(self, data: bytes) -> None:
        self.back = data + self.back

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)


def _member(source: Growing, target: Path, flags: int, method: int, compressed: int) -> tuple[int, int]:
    """Write one member's bytes to target; its CRC-32 and size."""
    crc = size = 0
    left = None if flags & 0x8 else compressed
    inflater = zlib.decompressobj(-15) if method == zipfile.ZIP_DEFLATED else None
    with open(target, "wb") as sink:
        while left != 0 and not (inflater and inflater.eof):
            chunk = source.read(CHUNK if left is None else min(CHUNK, left))
            if not chunk:
                raise UnsupportedError("the archive ended inside a member")
            if left is not None:
                left -= len(chunk)
            data = inflater.decompress(chunk) if inflater else chunk
            sink.write(data)
            crc, size = zlib.crc32(data, crc), size + len(data)
        if inflater:
            source.unread(inflater.unused_data)
            if not inflater.eof:
                raise UnsupportedError("a member's compressed data ends early")
    if flags & 0x8:  # a data descriptor follows: its optional signature, then CRC and sizes (4 bytes each)
        head = source.exactly(4)
        source.exactly(12 if int.from_bytes(head, "little") == DESCRIPTOR_SIGNATURE else 8)
    return crc, size


def inflate_all(source: Growing, into: Path) -> dict[str, tuple[int, int]]:
    """Every member, in archive order, into folder `into` under its name in the archive;
    {name: (CRC-32, size)} of what was written."""
    written: dict[str, tuple[int, int]] = {}
    while True:
        head = source.read(4)
        if len(head) < 4 or int.from_bytes(head, "little") != LOCAL_SIGNATURE:
            return written  # the central directory (or the end): no more members
        fields = LOCAL_HEADER.unpack(head + source.exactly(LOCAL_HEADER.size - 4))
        flags, method, compressed, size, name_length, extra_length = (fields[i] for i in (2, 3, 7, 8, 9, 10))
        name = source.exactly(name_length).decode("utf-8" if flags & 0x800 else "cp437")
        source.exactly(extra_length)
        if flags & 0x1 or method not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or 0xFFFFFFFF in (compressed, size):
            raise UnsupportedError(f"member {name}: encrypted, zip64 or compressed with method {method}")
        if method == zipfile.ZIP_STORED and flags & 0x8:
            raise UnsupportedError(f"member {name}: stored without its size")
        if name.endswith("/"):
            continue
        try:
            target = local_path(name, into, what="archive member")
        except Exception as error:  # the ordinary way says what is wrong with the name
            raise UnsupportedError(str(error)) from None
        target.parent.mkdir(parents=True, exist_ok=True)
        written[name] = _member(source, target, flags, method, compressed)


class WhileDownloading:
    """A thread that inflates the archive into a folder while the download writes it.

    `start(path)` when the download begins, `stop()` once it has ended (well or not), then
    `result(archive)`: the folder with every member, or None when the archive is to be unpacked
    the ordinary way (the members did not all match the central directory, or something unusual).
    """

    def __init__(self, into: Path) -> None:
        self.into = into
        self.done = threading.Event()
        self.written: dict[str, tuple[int, int]] | None = None
        self.thread: threading.Thread | None = None

    def start(self, archive: Path) -> None:
        self.into.mkdir()
        self.thread = threading.Thread(target=self._run, args=(Growing(archive, self.done),), daemon=True)
        self.thread.start()

    def _run(self, source: Growing) -> None:
        try:
            self.written = inflate_all(source, self.into)
        except (UnsupportedError, OSError, zlib.error):
            self.written = None
        finally:
            source.close()

    def stop(self) -> None:
        self.done.set()
        if self.thread is not None:
            self.thread.join()

    def result(self, archive: Path) -> Path | None:
        """The folder, when every file member of the (whole) archive was written with its CRC-32 and size."""
        if self.written is None:
            return None
        try:
            with zipfile.ZipFile(archive) as bundle:
                files = {m.filename: (m.CRC, m.file_size) for m in bundle.infolist() if not m.is_dir()}
        except (zipfile.BadZipFile, OSError, EOFError):
            return None
        if files != self.written:
            shutil.rmtree(self.into, ignore_errors=True)
            return None
        return self.into
