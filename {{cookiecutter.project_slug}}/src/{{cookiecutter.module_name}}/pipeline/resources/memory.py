"""Freed memory goes back to the system: a task's peak is what it holds at once.

Arrow's default pool (mimalloc or jemalloc) and glibc's malloc both keep freed memory for reuse.
A task that reads a column, converts it and drops it, one column after another (a fold's rows),
would then hold much of what it ever freed, and two folds fitting side by side hold it twice.
Tasks that do so trim glibc's heap after each such step. Arrow's C++ code uses the system
allocator too: the package sets ARROW_DEFAULT_MEMORY_POOL before pyarrow loads (its `__init__.py`);
`pyarrow.set_memory_pool` alone reaches only the pool Python passes in, not Arrow's own readers.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None  # glibc only
    except OSError:
        return None


def return_freed_memory() -> None:
    """Arrow on the system allocator for this process, and the memory freed so far returned."""
    import pyarrow

    if pyarrow.default_memory_pool().backend_name != "system":
        pyarrow.set_memory_pool(pyarrow.system_memory_pool())
    if _libc() is not None:
        _libc().malloc_trim(0)
