"""A DuckDB connection sized to the running task: its share of the cores, `[duckdb] memory_limit`,
and a spill folder in the cache.

DuckDB runs joins, aggregations and sorts larger than its memory limit by spilling to its temporary
folder; each connection gets one of its own in `<cache>/.duckdb/`, deleted when it closes (and, when
a killed run left one, by the next connection).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .. import config
from ..errors import ConfigError
from ..storage.cache import remove_abandoned
from .memory import machine_memory
from .threads import running_now

if TYPE_CHECKING:
    import duckdb

SPILL = ".duckdb"  # in the cache folder
MB = 1 << 20
SHARE = 0.5  # of the machine's memory, divided among the tasks running at once, by default


def memory_limit() -> str | None:
    """`[duckdb] memory_limit`, else half the machine's memory divided among the running tasks (at
    least 256 MB); None where the machine's memory is unknown (DuckDB's own default then)."""
    value = config.duckdb().memory_limit.strip()
    if value:
        return value
    total = machine_memory()
    if total is None:
        return None
    return f"{max(256, int(total * SHARE) // running_now() // MB)}MB"


def quoted(name: str) -> str:
    """A name as a DuckDB identifier (any table or column name, quotes included)."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str | Path) -> str:
    """A string as a DuckDB literal (a file's path)."""
    return "'" + str(text).replace("'", "''") + "'"


@contextlib.contextmanager
def connection(threads: int) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB database using `threads` threads, the memory limit and a spill folder of
    its own; closed, and its spill folder deleted, when the block ends."""
    import duckdb

    folder = config.cache_dir() / SPILL
    folder.mkdir(parents=True, exist_ok=True)
    remove_abandoned(folder, "spill-")
    spill = Path(tempfile.mkdtemp(prefix=f"spill-{os.getpid()}-", dir=folder))
    settings = {"threads": max(1, threads), "temp_directory": str(spill)}
    limit = memory_limit()
    if limit:
        settings["memory_limit"] = limit
    try:
        try:
            database = duckdb.connect(":memory:", config=settings)
        except duckdb.Error as error:
            raise ConfigError(f"luigi.cfg [duckdb] memory_limit = {limit}: {str(error).splitlines()[0]}") from None
        try:
            database.execute("SET enable_progress_bar = false")  # a local option: not settable at connect
            yield database
        finally:
            database.close()
    finally:
        shutil.rmtree(spill, ignore_errors=True)
