"""Results stay trustworthy: a write the disk refuses leaves nothing that looks done, and a result
damaged afterwards is set aside (sizes differ) or found by `make verify` (checksums differ)."""

from __future__ import annotations

import errno
import importlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import MANIFEST, MODULE

cache = importlib.import_module(f"{MODULE}.pipeline.storage.cache")
errors = importlib.import_module(f"{MODULE}.pipeline.errors")
verify = importlib.import_module(f"{MODULE}.pipeline.runs.verify")


class Numbers(cache.CachedTask):
    """A small task of the tests' own, stored into a cache folder of the test."""

    def build(self) -> dict[str, pd.DataFrame]:
        return {"numbers": pd.DataFrame({"x": range(2000), "y": [f"v{i % 7}" for i in range(2000)]})}


@pytest.fixture
def cached(luigi_config, tmp_path: Path) -> Path:
    """This process's cache in tmp_path: the folder Numbers writes into."""
    luigi_config("paths", "cache", tmp_path / "cache")
    return tmp_path / "cache" / "Numbers"


REFUSALS = {
    "ENOSPC": OSError(errno.ENOSPC, "No space left on device"),
    "EFBIG-from-pyarrow": OSError("[Errno 27] Error writing bytes to file. Detail: [errno 27] File too large"),
}


@pytest.mark.parametrize("refusal", list(REFUSALS))
def test_a_refused_write_is_one_line_and_leaves_nothing_that_looks_done(cached: Path, monkeypatch, refusal: str):
    """A table write that fails half-way (disk full, file-size limit) is a WriteError naming the file,
    no folder (finished or temporary) is left, and the same task stores once the disk takes writes."""
    real = cache._write_table

    def half_written(path: Path, table) -> int:
        path.write_bytes(b"PAR1 and then the disk was full")
        raise REFUSALS[refusal]

    monkeypatch.setattr(cache, "_write_table", half_written)
    task = Numbers()
    with pytest.raises(errors.WriteError) as caught:
        task.store(1)
    message = str(caught.value)
    assert "\n" not in message and "numbers.parquet" in message and str(task.folder.name) in message
    assert ("No space left" if refusal == "ENOSPC" else "File too large") in message
    assert list(cached.iterdir()) == []
    assert not task.complete()

    monkeypatch.setattr(cache, "_write_table", real)
    task.store(1)
    assert task.complete()


def test_other_write_errors_are_not_called_a_full_disk(cached: Path, monkeypatch):
    """A permission error stays what it is: only ENOSPC, EFBIG and EDQUOT become WriteError."""

    def denied(path: Path, table) -> int:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(cache, "_write_table", denied)
    with pytest.raises(PermissionError):
        Numbers().store(1)
    assert list(cached.iterdir()) == []


def truncate(folder: Path) -> None:
    path = folder / "numbers.parquet"
    path.write_bytes(path.read_bytes()[:-100])


def alter_same_size(folder: Path) -> None:
    path = folder / "numbers.parquet"
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0x5A for b in data[middle : middle + 64])
    path.write_bytes(bytes(data))


def remove_file(folder: Path) -> None:
    (folder / "numbers.parquet").unlink()


def garble_manifest(folder: Path) -> None:
    (folder / MANIFEST).write_text("{ not json")


DAMAGES = {  # damage -> whether the cheap size check sees it (else only make verify does)
    "truncated": (truncate, True),
    "missing-file": (remove_file, True),
    "manifest-not-json": (garble_manifest, True),
    "altered-same-size": (alter_same_size, False),
}


@pytest.mark.parametrize("name", list(DAMAGES))
def test_a_damaged_result_is_set_aside_or_reported_by_verify(cached: Path, capfd, name: str):
    """A size mismatch makes the result not done: moved to .damaged-<hash>-<time> with one warning
    line, so the task runs again. A same-size change passes that check and `make verify`'s
    checksums report it; with FIX it is moved aside too."""
    damage, seen_by_sizes = DAMAGES[name]
    task = Numbers()
    task.store(1)
    folder = task.folder
    assert verify.damage(folder) is None
    damage(folder)
    capfd.readouterr()

    assert task.complete() is not seen_by_sizes
    warning = capfd.readouterr().err
    problem = verify.damage(folder) if not seen_by_sizes else None
    if seen_by_sizes:
        [aside] = [p for p in cached.iterdir() if p.name.startswith(f".damaged-{folder.name}-")]
        assert not folder.exists() and (aside / MANIFEST).exists()
        assert warning.count("\n") == 1 and warning.startswith("WARNING: ") and folder.name in warning
        task.store(1)
        assert task.complete() and verify.damage(task.folder) is None
    else:
        assert warning == ""
        assert problem == "numbers.parquet does not match its manifest's sha256"
        aside = cache.set_aside(folder, problem, quiet=True)  # what `make verify FIX=1` does
        assert aside is not None and not folder.exists()
        assert not task.complete()


def test_verify_reports_every_damaged_result_and_fix_moves_them_aside(cached: Path, monkeypatch):
    """`make verify ALL=1` lists each damaged result with its problem and a summary, exits 1; FIX
    moves them aside, after which verify finds the cache clean."""
    gc = importlib.import_module(f"{MODULE}.pipeline.runs.gc")
    task = Numbers()
    task.store(1)
    kept = task.folder
    other = kept.with_name("0" * len(kept.name))  # a second result of the same task
    shutil.copytree(kept, other)
    alter_same_size(other)
    monkeypatch.setattr(verify, "cache_folders", lambda: [kept, other])

    lines, code = verify.verify([], everything=True, fix=False)
    assert code == 1
    assert lines[0] == f"damaged  Numbers/{other.name}: numbers.parquet does not match its manifest's sha256"
    assert lines[-1].startswith("2 result(s) in the cache checked, 1 damaged")
    assert other.exists()

    lines, code = verify.verify([], everything=True, fix=True)
    assert code == 1 and "moved to Numbers/.damaged-" in lines[0] and not other.exists()
    monkeypatch.setattr(verify, "cache_folders", lambda: [kept])
    lines, code = verify.verify([], everything=True, fix=False)
    assert code == 0 and lines == ["1 result(s) in the cache checked, 0 damaged: every file matches its manifest."]
    assert [p.name.startswith(".damaged-") for p in gc.damaged_folders()] == [True]


def test_a_table_that_does_not_parse_is_one_line_naming_the_result(cached: Path):
    """Reading a damaged Parquet file stops with a DamagedResultError naming the result folder
    and `make verify`, not pyarrow's message alone (which names no file)."""
    task = Numbers()
    task.store(1)
    path = task.folder / "numbers.parquet"
    data = bytearray(path.read_bytes())
    data[-60:-8] = bytes(len(data[-60:-8]))  # the footer, at the same size
    path.write_bytes(bytes(data))
    for read in (lambda: task.load("numbers"), lambda: list(task.batches("numbers"))):
        with pytest.raises(errors.DamagedResultError) as caught:
            read()
        message = str(caught.value)
        assert task.folder.name in message and "make verify" in message and "\n" not in message


def test_manifest_records_sizes_and_checksums_of_every_file(cached: Path):
    """What the checks compare against: every file of the result with its bytes and sha256."""
    task = Numbers()
    task.store(1)
    files = json.loads((task.folder / MANIFEST).read_text())["files"]
    assert set(files) == {"numbers.parquet"}
    path = task.folder / "numbers.parquet"
    assert files["numbers.parquet"]["bytes"] == path.stat().st_size
    assert files["numbers.parquet"]["sha256"] == cache.file_sha256(path)
