"""The cache every task writes to: one folder per (task, parameters, upstream, code) hash.

A task's folder is `data/cache/<Task>/<hash>/`. It is written under a temporary name and
renamed into place last, with `manifest.json` written just before and everything synced to the
disk first, so a folder either holds a finished result or does not exist. A folder whose files
no longer have the sizes its manifest gives (a full disk, a crashed copy, an edit) is not done:
it is moved aside to `<Task>/.damaged-<hash>-<time>` and rebuilt; `make verify` also compares
checksums. Changing a parameter, a config value the task uses, an upstream result, an input
file or the task's code gives a new hash and so a new folder; old folders are left as they were.
"""

from __future__ import annotations

import abc
import ast
import contextlib
import functools
import glob
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import luigi
from luigi.task import flatten

from ..config import ResolvedOnce, cache_dir, cache_url, shown
from ..errors import DamagedResultError, PipelineError
from ..resources.processes import pid_alive
from .disk import sync_file, sync_folder, sync_tree, write_error
from .parquet import ParquetSink

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

MANIFEST = "manifest.json"
DAMAGED_PREFIX = ".damaged-"
HASH_LENGTH = 16
_PACKAGE = __name__.partition(".")[0]  # the project's package: its modules are the tasks' code


def _digest(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- what a task's code is --------------------------------------------------------------------


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            if docstring and isinstance(first.value.value, str):
                node.body = node.body[1:] or [ast.Pass()]
    return tree


def _syntax_hash(path: Path) -> str:
    tree = _strip_docstrings(ast.parse(path.read_bytes(), filename=str(path)))
    return _digest(ast.dump(tree))


def module_hash(module_name: str) -> str:
    """Hash of a module's syntax tree: comments, formatting and docstrings do not count. Kept
    with the file's size and mtime, so an up-to-date run parses no source."""
    import sys

    return _file_hashes.get(Path(sys.modules[module_name].__file__), "syntax", _syntax_hash)


def _defined_names(node: ast.stmt) -> list[str]:
    """The module-level names a statement defines: a function, a class, simple assignments and
    imports. Any other statement (`if`, `for`, a call) defines none here."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.Import | ast.ImportFrom):
        return [(alias.asname or alias.name).partition(".")[0] for alias in node.names]
    targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
    names = [name.id for target in targets for name in ast.walk(target) if isinstance(name, ast.Name)]
    return names if targets and all(isinstance(t, ast.Name | ast.Tuple) for t in targets) else []


_Definitions = tuple[ast.Module, dict[str, list[ast.stmt]], list[ast.stmt]]


@functools.lru_cache(maxsize=64)
def _module_definitions(path: Path, size: int, mtime_ns: int) -> _Definitions:
    """A module's syntax tree (docstrings left out), its statements by the names they define, and
    those that define none; parsed once per version of the file (size and mtime), not once per class."""
    tree = _strip_docstrings(ast.parse(path.read_bytes(), filename=str(path)))
    definitions: dict[str, list[ast.stmt]] = {}
    always: list[ast.stmt] = []
    for node in tree.body:
        names = _defined_names(node)
        for name in names:
            definitions.setdefault(name, []).append(node)
        if not names:
            always.append(node)
    return tree, definitions, always


def _class_syntax_hash(path: Path, class_name: str) -> str:
    """Hash of a class's definition and of the module-level code it uses, found by name, and so on
    for what that uses (a helper function, a constant, an import). Module statements that define
    no name (an `if`, a call) always count. Another class of the module, or a helper only it uses,
    does not: editing one feature of a file re-runs that feature, not its neighbours."""
    stat = path.stat()
    tree, definitions, always = _module_definitions(path, stat.st_size, stat.st_mtime_ns)
    if class_name not in definitions:  # made at run time (a class factory): the whole module
        return _digest(ast.dump(tree))
    used = list(always)
    wanted, seen = [class_name], set()
    while wanted:
        name = wanted.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in definitions.get(name, []):
            if node not in used:
                used.append(node)
                wanted.extend(n.id for n in ast.walk(node) if isinstance(n, ast.Name))
    order = {id(node): i for i, node in enumerate(tree.body)}
    return _digest("\n".join(ast.dump(node) for node in sorted(used, key=lambda node: order[id(node)])))


def class_hash(cls: type) -> str:
    """Hash of what defines a class in its module (see _class_syntax_hash). Kept with the file's
    size and mtime, so an up-to-date run parses no source."""
    import sys

    path = Path(sys.modules[cls.__module__].__file__)
    return _file_hashes.get(path, "syntax", lambda path: _class_syntax_hash(path, cls.__qualname__), cls.__qualname__)


def code_hash(cls: type) -> str:
    """Hash of a task class and its project-specific base classes, each as class_hash() sees it.

    This module (the cache machinery) is left out: it decides where results are stored,
    not what they are.
    """
    classes = [k for k in cls.__mro__ if k.__module__.startswith(_PACKAGE + ".") and k.__module__ != __name__]
    return _digest("\n".join(f"{k.__module__}.{k.__qualname__}:{class_hash(k)}" for k in classes))


# --- what an input file is --------------------------------------------------------------------


class _FileHashes:
    """Hashes of files, each kept with the file's size and mtime and recomputed only when those
    change: in memory for this process, and in a JSON file per kind in the cache folder for the
    next run (an up-to-date `make all` then reads no data file and parses no source file)."""

    def __init__(self) -> None:
        self._known: dict[str, dict[str, dict[str, Any]]] = {}

    def get(self, path: Path, kind: str, compute: Callable[[Path], str], part: str = "") -> str:
        """The hash of a file (or of a `part` of it: a class of a module) by `compute`."""
        stat = path.stat()
        name, when = f"{path}#{part}" if part else str(path), {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        known = self._known.get(kind)
        entry = known.get(name) if known is not None else None
        if entry is None or {key: entry[key] for key in when} != when or "hash" not in entry:
            store = cache_dir() / f"{kind}.json"
            try:
                known = self._known[kind] = json.loads(store.read_text())  # another process may have it
            except (OSError, ValueError):
                known = self._known[kind] = {}
            entry = known.get(name)
            if entry is None or {key: entry.get(key) for key in when} != when or "hash" not in entry:
                entry = known[name] = {**when, "hash": compute(path)}
                with atomic_file(store, durable=False) as tmp:  # lost: computed again next run
                    tmp.write_text(json.dumps(known, indent=1, sort_keys=True))
        return entry["hash"]


_file_hashes = _FileHashes()


def fingerprint(path: Path) -> str:
    """Content checksum of an input file, recomputed only when its size or mtime changes.

    A file not there yet (upstream will make it) is "missing": the hash is computed again once
    it exists, so the result is stored under the hash of the real file.
    """
    path = Path(path).resolve()
    try:
        return _file_hashes.get(path, "fingerprints", file_sha256)
    except FileNotFoundError:
        return "missing"


# Read once, at import: os.umask can only be read by setting it, which would race with threads.
_UMASK = os.umask(0o22)
os.umask(_UMASK)


def temp_file(folder: Path, prefix: str, suffix: str = "") -> Path:
    """A new empty file `<prefix><random><suffix>` in folder, with the mode a plain open() gives
    (0666 less the umask), not mkstemp's 0600: the file is renamed into place and must stay as
    readable as any other file the user writes."""
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
    finally:
        os.close(fd)
    return Path(name)


@contextlib.contextmanager
def atomic_file(path: Path, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path` that replaces it only if the block succeeds.

    The temporary file is `.<name>.<pid>-<random>`, so a later write of the same path deletes
    those a killed process left behind. The file reaches the disk before the rename, and the
    rename after it (durable=False: neither waits for the disk, for files that can be made again);
    a write the disk refuses is a WriteError naming the path.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_abandoned(path.parent, f".{path.name}.")
        tmp = temp_file(path.parent, f".{path.name}.{os.getpid()}-")
    except OSError as error:
        raise write_error(error, path) or error from None
    try:
        yield tmp
        if durable:
            sync_file(tmp)
        os.replace(tmp, path)
        if durable:
            sync_folder(path.parent)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        refused = write_error(error, path)
        if refused is not None:
            raise refused from None
        raise


def _hash_of(spec: dict[str, Any]) -> str:
    return _digest(json.dumps(spec, sort_keys=True, default=str))[:HASH_LENGTH]


@contextlib.contextmanager
def _memo_block(store: threading.local) -> Iterator[dict[str, Any]]:
    """A dict shared by the blocks nested in this thread's outermost one, dropped when it ends
    (thread-local: Train fits folds in threads)."""
    outer = getattr(store, "memo", None)
    store.memo = {} if outer is None else outer
    try:
        yield store.memo
    finally:
        store.memo = outer


_hashes, _completeness = threading.local(), threading.local()


def import_steps(*modules: str) -> Iterator[None]:
    """Import the modules one by one, a step of a task's preload() each."""
    import importlib

    for module in modules:
        importlib.import_module(module)
        yield


def hashes_fixed() -> contextlib.AbstractContextManager[dict[str, Any]]:
    """Within the block each task's hash is computed once: for reading results after a run,
    when no input can change any more (during a run, a hash must follow its inputs)."""
    return _memo_block(_hashes)


def _checked() -> contextlib.AbstractContextManager[dict[str, Any]]:
    """Each task's completeness, found once within the outermost complete() call."""
    return _memo_block(_completeness)


# --- the folder -------------------------------------------------------------------------------


def remove_abandoned(folder: Path, prefix: str) -> None:
    """Delete the files and folders `<prefix><pid>-...` in folder whose process is gone: what
    killed runs left of their temporary files and folders."""
    for leftover in folder.glob(f"{glob.escape(prefix)}*"):
        pid = leftover.name.removeprefix(prefix).split("-")[0]
        if not pid.isdigit() or pid_alive(int(pid)):
            continue
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_folder(final: Path) -> Iterator[Path]:
    """Yield an empty temporary folder that becomes `final` only if the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(final.parent, f".tmp-{final.name}-")
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-{os.getpid()}-", dir=final.parent))
    tmp.chmod(0o777 & ~_UMASK)  # mkdtemp's 0700 would keep the result from other users
    try:
        yield tmp
        sync_tree(tmp)  # the data, then the folder's entries, before the name says "done"
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / MANIFEST).exists():
                raise
            shutil.rmtree(tmp)  # another process finished the same result first
        sync_folder(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def size_problem(folder: Path) -> str | None:
    """What makes a finished-looking folder untrustworthy at a glance (a manifest that is not
    JSON, a file missing or of another size than the manifest says), or None. One stat per file,
    no data read: this runs on every up-to-date check."""
    try:
        files = json.loads((folder / MANIFEST).read_bytes())["files"]
        sizes = {name: int(entry["bytes"]) for name, entry in files.items()}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return f"{MANIFEST} is not a readable manifest"
    for name, size in sizes.items():
        try:
            actual = (folder / name).stat().st_size
        except FileNotFoundError:
            return f"{name} is missing"
        if actual != size:
            return f"{name} has {actual} bytes, its manifest says {size}"
    return None


def set_aside(folder: Path, problem: str, quiet: bool = False) -> Path | None:
    """Move a damaged result to `<Task>/.damaged-<hash>-<time>` (kept for a look, listed and
    deleted by `make gc`), with one warning line; None when another process moved it first."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    aside = folder.with_name(f"{DAMAGED_PREFIX}{folder.name}-{stamp}-{os.getpid()}")
    try:
        os.rename(folder, aside)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise PipelineError(f"{shown(folder)} is damaged ({problem}) and cannot be moved aside: {error}") from None
    sync_folder(folder.parent)
    if quiet:
        return aside
    line = f"WARNING: {shown(folder)} was damaged ({problem}): moved to {shown(aside)}; it is built again\n"
    os.write(2, line.encode())
    return aside


def shared() -> Any:
    """The cache on S3 (shared_cache.S3Results) when `[paths] cache` is an s3:// URL, else None:
    then cache_dir() is this machine's mirror of it."""
    url = cache_url()
    if url is None:
        return None
    from .shared_cache import results

    return results(url)


def mirrored(folder: Path) -> Path:
    """A result folder (`<cache>/<Task>/<hash>`); with a cache on S3, downloaded into the mirror
    first when the mirror lacks it and S3 has it done."""
    remote = shared()
    if remote is not None and not (folder / MANIFEST).is_file():
        with contextlib.suppress(_NotOnS3Error), atomic_folder(folder) as tmp:
            if not remote.download(folder.parent.name, folder.name, tmp):
                raise _NotOnS3Error
    return folder


class CacheFolder(luigi.Target):
    """A task's output: done when its folder holds a manifest whose files have the sizes it
    gives (a damaged result is moved aside, so that it is built again). With a cache on S3 the
    folder is the local mirror's, and a result it lacks is done when S3 has its manifest (one
    HEAD, no data read)."""

    def __init__(self, path: Path, remote: Any = None) -> None:
        self.path = path
        self.remote = remote

    def exists(self) -> bool:
        try:
            problem = size_problem(self.path)
        except FileNotFoundError:
            return self.remote is not None and self.remote.exists(self.path.parent.name, self.path.name)
        if problem is None:
            return True
        set_aside(self.path, problem)
        return False

    def __str__(self) -> str:
        return str(self.path)


class CachedTask(ResolvedOnce, luigi.Task):
    """Base of every pipeline task: it owns paths, hashing, atomic writes and loading.

    A subclass declares `requires()`, the config values it uses (`settings()`), any files it
    reads from outside the cache (`inputs()`), and `build()`, which returns its results as
    named DataFrames (saved as Parquet) and may write other files into `self.workdir`.
    """

    fork_ahead: ClassVar[bool] = False  # see main._PreloadingWorker: the one such task of a run loads its own modules

    def preload(self) -> Iterator[None]:
        """Import what build() needs, a step at a time. The run's process does it for each kind of
        task that will run, while other tasks run, so that the task processes Luigi forks
        (`WORKERS=2`) start with these modules loaded instead of importing them each (pandas and
        pyarrow cost about 0.4 s a process, scikit-learn 1 s more); between steps it starts any
        task that may start. An up-to-date run imports none of them."""
        yield from import_steps("pandas", "pyarrow.parquet")

    def settings(self) -> dict[str, Any]:
        """Config values the output depends on: part of the hash."""
        return {}

    def inputs(self) -> dict[str, Path]:
        """Files outside the cache that the task reads: their checksums are part of the hash."""
        return {}

    @abc.abstractmethod
    def build(self) -> dict[str, pd.DataFrame | Iterable[pd.DataFrame | pa.RecordBatch]]:
        """Compute the task's results: named tables, plus any files written to self.workdir.

        A table may be an iterable of DataFrames or Arrow record batches (a generator): each is
        written as one Parquet row group as it comes, so a large result is never held whole.
        Tables are written in the order given, each to its end before the next.
        """

    # -- identity --

    def upstream(self) -> list[CachedTask]:
        """The cached tasks this one requires; found once per task within hashes_fixed() (building
        task objects costs Luigi a parameter lookup each)."""
        with hashes_fixed() as fixed:
            key = f"upstream of {self.task_id}"
            if key not in fixed:
                fixed[key] = [task for task in flatten(self.requires()) if isinstance(task, CachedTask)]
            return fixed[key]

    def spec(self) -> dict[str, Any]:
        """Everything the hash covers, as stored in the manifest."""
        return {
            "task": self.task_family,
            "params": self.to_str_params(only_significant=True),
            "settings": self.settings(),
            "inputs": {name: fingerprint(path) for name, path in self.inputs().items()},
            "upstream": {task.task_id: task.task_hash() for task in self.upstream()},
            "code": code_hash(type(self)),
        }

    def task_hash(self) -> str:
        """The hash of spec(). Within one call each upstream task is hashed once (every fold of
        Train needs every feature), as within hashes_fixed()."""
        with hashes_fixed() as fixed:
            if self.task_id not in fixed:
                fixed[self.task_id] = _hash_of(self.spec())
            return fixed[self.task_id]

    @property
    def folder(self) -> Path:
        with hashes_fixed() as fixed:  # the cache's place is a Luigi config lookup: once per call
            if "cache" not in fixed:
                fixed["cache"] = cache_dir()
            return fixed["cache"] / self.task_family / self.task_hash()

    def output(self) -> CacheFolder:
        return CacheFolder(self.folder, shared())

    # -- writing --

    def run(self) -> None:
        """Luigi's entry point: the result written with this task's share of the cores."""
        from ..resources import threads

        with threads.running(), threads.limited() as count:
            self.store(count)

    def store(self, threads: int) -> None:
        """Build the result and write it atomically: a folder with the tables and a manifest, renamed
        into place last. `threads` is what the caller let the task use (recorded in the manifest)."""
        started = time.perf_counter()
        spec = self.spec()
        final = cache_dir() / self.task_family / _hash_of(spec)
        if CacheFolder(final, shared()).exists():  # only results upstream of it had to be built again
            return
        self.facts: dict[str, Any] = {}
        self.threads = threads
        try:
            self._store(final, spec, started)
        except OSError as error:
            refused = write_error(error, final)
            if refused is not None:
                raise refused from None
            raise

    def _store(self, final: Path, spec: dict[str, Any], started: float) -> None:
        # A task runs once its upstream is done, so while it builds (and writes the tables it
        # yields a batch at a time) no hash can change: each result's place is found once, not
        # once per read of an upstream result.
        with atomic_folder(final) as self.workdir, hashes_fixed():
            tables = self.build() or {}
            rows = {}
            for name, table in tables.items():
                path = self.workdir / f"{name}.parquet"
                try:
                    rows[path.name] = _write_table(path, table)
                except OSError as error:
                    raise write_error(error, final / path.name) or error from None
            files = {
                path.name: {
                    "bytes": path.stat().st_size,
                    "sha256": file_sha256(path),
                    **({"rows": rows[path.name]} if path.name in rows else {}),
                }
                for path in sorted(self.workdir.iterdir())
            }
            manifest = {
                **spec,
                "hash": final.name,
                "files": files,
                "facts": self.facts,
                "seconds": round(time.perf_counter() - started, 3),
                "threads": self.threads,
                "finished_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            (self.workdir / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
            remote = shared()
            if remote is not None:  # on S3 first: the mirror then holds what S3 holds
                remote.publish(self.task_family, final.name, self.workdir)

    def complete(self) -> bool:
        """Done when this result is whole and so is every result it was made from, as make sees a
        target: a damaged upstream result (set aside) is built again on the next run, and then
        this task finds its own result already there (store() returns at once). Within one call
        each task is checked once. Parts (Train's folds) are not: Train's result holds what they
        gave, and a fit of Train checks each fold before it uses it."""
        with hashes_fixed(), _checked() as known:
            if self.task_id not in known:
                known[self.task_id] = self.output().exists() and all(task.complete() for task in self.upstream())
            return known[self.task_id]

    def parts(self) -> list[CachedTask]:
        """Results this task writes itself besides its own folder (Train: one per fold), so that
        run records, `make status` and `make gc` see them as the pipeline's."""
        return []

    # -- reading --

    @contextlib.contextmanager
    def reading(self, name: str) -> Iterator[Path]:
        """The path of one of the task's tables, for a block that reads it: a file that does not
        parse stops the run with one line naming the result folder (pyarrow's own errors name
        no file) and the command that finds damaged results."""
        import pyarrow as pa

        folder = self.done_folder()
        try:
            yield folder / f"{name}.parquet"
        except (pa.ArrowException, OSError) as error:
            message = " ".join(str(error).split())
            raise DamagedResultError(
                f"{self.task_family}: cannot read {name}.parquet of {shown(folder)} ({type(error).__name__}: "
                f"{message}); if the result is damaged, `make verify FIX=1` sets it aside and `make all` rebuilds it"
            ) from None

    def done_folder(self) -> Path:
        """The task's finished result folder (a PipelineError when there is none yet); with a
        cache on S3, a result the mirror lacks is downloaded into it first."""
        folder = mirrored(self.folder)
        if not (folder / MANIFEST).is_file():
            raise PipelineError(
                f"{self.task_family} has no result for the current code and config "
                f"(expected {folder}); run the pipeline first, e.g. `make all`"
            )
        return folder

    def manifest(self) -> dict[str, Any]:
        """The result's manifest; with a cache on S3 and no local copy, one GET, no data."""
        remote = shared()
        if remote is not None and not (self.folder / MANIFEST).is_file():
            found = remote.manifest(self.task_family, self.folder.name)
            if found is not None:
                return found
        return json.loads((self.done_folder() / MANIFEST).read_text())

    def is_done(self) -> bool:
        """Whether this task's own result is there (sizes checked; on S3, its manifest)."""
        return self.output().exists()

    def read_dictionary(self, name: str) -> list[str]:
        """Columns of a table that load as pandas categoricals (Ingest: text with few values)."""
        return []

    def load(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        """One of the task's tables, optionally only some columns (Parquet reads just those)."""
        import pandas as pd
        import pyarrow as pa

        with self.reading(name) as path:
            table = pd.read_parquet(path, columns=columns, read_dictionary=self.read_dictionary(name) or None)
        pa.default_memory_pool().release_unused()  # Arrow's pool would keep the file's buffers
        return table

    def batches(self, name: str, columns: list[str] | None = None, rows: int = 1 << 17) -> Iterator[pd.DataFrame]:
        """One of the task's tables, `rows` rows at a time, with only the given columns: a
        large table is never in memory at once."""
        with self.reading(name) as path:
            yield from self._batches(path, name, columns, rows)

    def _batches(self, path: Path, name: str, columns: list[str] | None, rows: int) -> Iterator[pd.DataFrame]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        # Row group by row group: ParquetFile.iter_batches keeps a little memory per row group
        # read, so its peak grows with the table (measured: about 6 bytes per row).
        with pq.ParquetFile(path, read_dictionary=self.read_dictionary(name) or None) as table:
            pending = None
            for group in range(table.num_row_groups):
                part = table.read_row_group(group, columns=columns)
                pending = part if pending is None else pa.concat_tables([pending, part])
                while pending.num_rows >= rows:
                    yield pending.slice(0, rows).to_pandas()
                    pending = pending.slice(rows)
            if pending is not None and pending.num_rows:
                yield pending.to_pandas()


class _NotOnS3Error(Exception):
    """done_folder(): S3 has no such result (the PipelineError that follows says so)."""


def _write_table(path: Path, table: pd.DataFrame | Iterable[pd.DataFrame | pa.RecordBatch]) -> int:
    """Write a DataFrame, or DataFrames (or Arrow record batches) one row group each, as Parquet
    (uncompressed while small: ParquetSink); return the rows written."""
    import sys

    import pyarrow as pa

    pd = sys.modules.get("pandas")  # not loaded: the table is no DataFrame
    parts = [table] if pd is not None and isinstance(table, pd.DataFrame) else table
    schema = None
    with ParquetSink(path) as sink:
        for part in parts:
            if isinstance(part, pa.RecordBatch):
                part = pa.Table.from_batches([part])
            else:
                part = pa.Table.from_pandas(part, preserve_index=False, schema=schema)
            schema = schema or part.schema
            sink.write(part)
    if schema is None:
        raise PipelineError(f"{path.parent.name}/{path.name}: the task produced no rows")
    return sink.rows
