"""Download: the Kaggle competition's files into data/raw, through the official client, atomically.

The archive is downloaded into a hidden temporary folder in data/raw and unpacked there (its
members inflated as they arrive, see unzip.py, checked against the archive's CRC-32s): a zip
of one folder loses that folder, `.zip` members (Kaggle's `train.csv.zip`) are unpacked too, and
train.csv, test.csv and sample_submission.csv are moved to the top wherever they were. Only
when every file is whole are they moved into data/raw, so a failure leaves it as it was.
`data/raw/.download.json` records what was downloaded: a second `make download` sends no
request at all; `make download FORCE=1` downloads again.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

import luigi

from ..config import RAW_FILES, kaggle, raw_dir, shown
from ..errors import DataError
from ..services import kaggle_api
from ..storage.cache import atomic_file, remove_abandoned
from .fetch import _make_folders, _stat, _unchanged_locally, read_state, zip_members
from .unzip import WhileDownloading

STATE = ".download.json"
TEMP_PREFIX = ".download-"
MB = 1 << 20


# --- unpacking ----------------------------------------------------------------------------------


def _extract(bundle: zipfile.ZipFile, into: Path, what: str) -> list[str]:
    """A zip's files into folder `into` (names as fetch.zip_members gives them), checked against
    their CRC-32 as they are read; their names. Members are inflated in parallel threads (zlib
    releases the GIL), so train.csv and test.csv take the time of the larger one."""
    members = zip_members(bundle, into, what)
    _make_folders(into, list(members))

    def extract(name: str) -> None:
        with bundle.open(members[name]) as source, open(into / name, "wb") as sink:
            shutil.copyfileobj(source, sink, 8 * MB)

    with ThreadPoolExecutor(max_workers=max(1, min(len(members), os.cpu_count() or 1))) as pool:
        list(pool.map(extract, members))
    return list(members)


def _unpack_inner_zips(into: Path, names: list[str], what: str) -> list[str]:
    """Unpack `.zip` members where they lie (`train.csv.zip` -> `train.csv`) and drop them."""
    result = [name for name in names if not name.lower().endswith(".zip")]
    for name in names:
        if name not in result:
            inner = into / name
            parent = PurePosixPath(name).parent
            with zipfile.ZipFile(inner) as bundle:
                found = _extract(bundle, inner.parent, f"{what} member {name}")
            inner.unlink()
            for member in found:
                full = str(parent / member) if str(parent) != "." else member
                if full in result:
                    raise DataError(f"{what}: {full} is both a file and inside {name}; nothing was changed")
                result.append(full)
    return result


def _to_top(into: Path, names: list[str], what: str) -> list[str]:
    """train.csv, test.csv and sample_submission.csv (or .gz) at the top of `into`, from wherever
    they were in the archive; one DataError naming what was found when one is missing or twice there."""
    missing, twice = [], []
    for wanted in RAW_FILES:
        if wanted in names or f"{wanted}.gz" in names:
            continue
        found = [name for name in names if PurePosixPath(name).name in (wanted, f"{wanted}.gz")]
        if len(found) == 1:
            top = PurePosixPath(found[0]).name
            os.replace(into / found[0], into / top)
            names = [top if name == found[0] else name for name in names]
        else:
            (missing if not found else twice).append(wanted)
    if missing or twice:
        held = ", ".join(sorted(names)[:12]) + (", ..." if len(names) > 12 else "")
        problem = "; ".join(
            part
            for part in (
                f"no {', '.join(missing)}" if missing else "",
                f"more than one {', '.join(twice)}" if twice else "",
            )
            if part
        )
        raise DataError(
            f"{what}: {problem} (it holds: {held or 'nothing'}); data/raw was not changed: put the "
            "competition's train.csv, test.csv and sample_submission.csv there yourself"
        )
    return names


def _take_inflated(bundle: zipfile.ZipFile, inflated: Path, into: Path, what: str) -> list[str]:
    """The members inflated while downloading (named as in the archive) moved to their names in
    `into`, as _extract would have written them; their names."""
    members = zip_members(bundle, into, what)
    _make_folders(into, list(members))
    for name, member in members.items():
        os.replace(inflated / member.filename, into / name)
    return list(members)


def unpack(archive: Path, into: Path, what: str, inflated: Path | None = None) -> list[str]:
    """Every file of the archive in folder `into`, the three competition files at the top; their
    names. `inflated`: a folder with every member already inflated and checked (unzip.py)."""
    into.mkdir()
    try:
        with zipfile.ZipFile(archive) as bundle:
            names = _take_inflated(bundle, inflated, into, what) if inflated else _extract(bundle, into, what)
        names = _unpack_inner_zips(into, names, what)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError) as error:
        raise DataError(f"{what}: not a valid zip archive ({error}); run `make download FORCE=1` again") from None
    except OSError as error:
        raise DataError(f"{what}: cannot unpack it into {shown(into.parent)} ({error})") from None
    return _to_top(into, names, what)


# --- the task -----------------------------------------------------------------------------------


class Download(luigi.Task):
    """The files of luigi.cfg [kaggle] competition, from Kaggle into data/raw.

    Done, without any request, when data/raw/.download.json names this competition and every
    file it lists is still as the download left it; `force` downloads again.
    """

    force = luigi.BoolParameter(default=False, description="download again even when the files are there")

    def output(self) -> luigi.LocalTarget:
        """The record of what was downloaded (the files themselves are in data/raw)."""
        return luigi.LocalTarget(raw_dir() / STATE)

    def complete(self) -> bool:
        if self.force and not getattr(self, "_downloaded", False):
            return False
        state = read_state(raw_dir(), STATE)
        return state.get("competition") == kaggle_api.competition() and _unchanged_locally(state, raw_dir())

    def run(self) -> None:
        folder = raw_dir()
        folder.mkdir(parents=True, exist_ok=True)
        remove_abandoned(folder, TEMP_PREFIX)
        remove_abandoned(folder, f".{STATE}.")
        slug = kaggle_api.competition()
        api = kaggle_api.client(slug)
        temp = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", dir=folder))
        inflating = WhileDownloading(temp / "inflated")
        try:
            try:
                archive = kaggle_api.download(api, slug, temp, kaggle().max_attempts, arriving=inflating.start)
            finally:
                inflating.stop()
            inflated = inflating.result(archive.path)
            files = temp / "files"
            names = unpack(archive.path, files, f"the archive of Kaggle competition {slug}", inflated)
            _make_folders(folder, names)
            written = {}
            for name in names:
                os.replace(files / name, folder / name)
                written[name] = _stat(folder / name)
        finally:
            shutil.rmtree(temp, ignore_errors=True)
        state: dict[str, Any] = {
            "competition": slug,
            "archive": {"size": archive.size, "last_modified": archive.last_modified, "etag": archive.etag},
            "unpacked_while_downloading": inflated is not None,
            "downloaded_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "files": written,
        }
        with atomic_file(folder / STATE) as tmp:
            tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
        self._downloaded = True
        print(f"downloaded {slug} ({archive.size / MB:.1f} MB): {', '.join(sorted(names))} into {shown(folder)}")

    def on_success(self) -> Any:
        self._downloaded = False  # Luigi reuses task instances: the next forced build downloads again
        return super().on_success()
