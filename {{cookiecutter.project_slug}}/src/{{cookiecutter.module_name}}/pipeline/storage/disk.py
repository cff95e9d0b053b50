"""Durable writes and the disk's refusals.

A result is renamed into place only after its files and its folder reached the disk (fsync),
and the parent folder is synced after the rename: after a power loss a folder that looks done
holds the data its manifest describes. A write the disk refuses (full, over a file-size limit)
becomes one line naming the path instead of a traceback.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from ..config import shown
from ..errors import WriteError

# Only `make bench` turns this off, to measure what the syncs cost; a user never should.
SYNC = os.environ.get("PIPELINE_FSYNC", "1") != "0"
_REFUSALS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def sync_file(path: Path) -> None:
    """Push a written file's data to the disk (a read-only descriptor is enough on Linux and macOS)."""
    if SYNC:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def sync_folder(path: Path) -> None:
    """Push a folder's entries (files created or renamed in it) to the disk."""
    if SYNC:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:  # a file system whose folders cannot be opened has nothing to sync
            return
        try:
            os.fsync(fd)
        except OSError as error:
            if error.errno not in (errno.EINVAL, errno.ENOTSUP):  # folders that cannot be synced
                raise
        finally:
            os.close(fd)


def sync_tree(folder: Path) -> None:
    """Every file in a folder and its subfolders, each folder after its files."""
    if not SYNC:
        return
    for parent, _, files in os.walk(folder, topdown=False):
        for name in files:
            sync_file(Path(parent, name))
        sync_folder(Path(parent))


def refused(error: BaseException) -> str | None:
    """Why the disk refused a write ("No space left on device", "File too large"), or None when
    the error is something else. pyarrow's errors carry the errno only in their text."""
    if not isinstance(error, OSError):
        return None
    if error.errno in _REFUSALS:
        return os.strerror(error.errno)
    text = str(error)
    for code in _REFUSALS:
        if os.strerror(code) in text or f"[errno {code}]" in text.lower():
            return os.strerror(code)
    return None


def write_error(error: BaseException, path: Path) -> WriteError | None:
    """The one-line error for a refused write to path (the file the OS names, when it does), or None."""
    reason = refused(error)
    if reason is None:
        return None
    where = getattr(error, "filename", None) or path
    return WriteError(
        f"cannot write {shown(Path(where))}: {reason}; nothing was kept. Free some space "
        "(or raise the file-size limit) and run again"
    )
