"""Freed memory goes back to the system: a task's peak is what it holds at once.

Arrow's default pool (mimalloc or jemalloc) and glibc's malloc both keep freed memory for reuse,
and glibc raises its mmap threshold to the largest block freed so far. A task that reads a
column, converts it and drops it, one column after another (a fold's rows, a feature), would
then hold most of what it ever freed. With Arrow on the system allocator and glibc's threshold
fixed at 1 MB, every buffer of a megabyte or more is returned as soon as it is freed; smaller
ones (a model's per-node histograms) stay in malloc's fast arenas.
"""

from __future__ import annotations

import ctypes
import ctypes.util

MMAP_THRESHOLD = 1 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
_done = False


def return_freed_memory() -> None:
    """Set both allocators up as above, once per process (a no-op where libc is not glibc)."""
    global _done
    if _done:
        return
    _done = True
    import pyarrow

    pyarrow.set_memory_pool(pyarrow.system_memory_pool())
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        libc.mallopt(_M_TRIM_THRESHOLD, MMAP_THRESHOLD)
    except (OSError, AttributeError):  # not glibc: its allocator's defaults stay
        pass
