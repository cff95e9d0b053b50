"""Talking to Kaggle through the official `kaggle` client: its requests, its errors as one line.

Credentials come only from the client's own sources: `~/.kaggle/kaggle.json` (or
`KAGGLE_CONFIG_DIR`), `KAGGLE_USERNAME` and `KAGGLE_KEY`, or `KAGGLE_API_TOKEN`; the Makefile
exports those set in `.env`. Nothing here prints or stores them. So does the endpoint: the
client's `KAGGLE_API_ENVIRONMENT=LOCALHOST` and requests' `HTTP_PROXY` point the same code at a
local server (the tests' fake Kaggle). The client is imported here, lazily: an up-to-date run
never needs it.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import kaggle as kaggle_config
from ..config import shown
from ..errors import ConfigError, KaggleError

COMPETITION_URL = "https://www.kaggle.com/competitions/{}"
NO_CREDENTIALS = (
    "no Kaggle credentials: put kaggle.json (Kaggle > Settings > API > Create New Token) in ~/.kaggle/ "
    "and chmod 600 it, or set KAGGLE_USERNAME and KAGGLE_KEY (or KAGGLE_API_TOKEN) in .env (see .env.example)"
)
PAGE_SIZE = 20  # the CLI's page size for `competitions submissions`
MAX_PAGES = 50


def competition() -> str:
    """luigi.cfg [kaggle] competition; a ConfigError when it is empty."""
    slug = kaggle_config().competition.strip()
    if not slug:
        raise ConfigError(
            "luigi.cfg [kaggle] competition is empty: set it to the competition's slug "
            "(the last part of https://www.kaggle.com/competitions/<slug>)"
        )
    return slug


def _endpoint() -> str:
    """Where the client sends its requests (for messages)."""
    try:
        from kagglesdk.kaggle_env import get_endpoint, get_env

        return get_endpoint(get_env())
    except Exception:  # an unknown KAGGLE_API_ENVIRONMENT: the client itself says so later
        return "the Kaggle API"


def _one_line(text: object) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= 200 else line[:199] + "~"


@contextlib.contextmanager
def errors_as_one_line(what: str, slug: str) -> Iterator[None]:
    """Turn the client's exceptions (requests' and urllib3's) about `what` into one-line
    KaggleErrors that say what is wrong and what to do; stdout chatter of the client is dropped."""
    import requests
    import urllib3

    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter):
            yield
    except requests.HTTPError as error:
        status = error.response.status_code if error.response is not None else None
        said = _one_line(error.args[0] if error.args else error)
        if status == 401:
            raise KaggleError(
                f"{what}: Kaggle rejected the credentials (401); check KAGGLE_USERNAME and KAGGLE_KEY, "
                "KAGGLE_API_TOKEN or ~/.kaggle/kaggle.json (or create a new token in Kaggle > Settings > API)"
            ) from None
        if status == 403:
            raise KaggleError(
                f"{what}: forbidden (403: {said}); accept the competition's rules at "
                f"{COMPETITION_URL.format(slug)}/rules with the account of these credentials, then run it again"
            ) from None
        if status == 404:
            raise KaggleError(
                f"{what}: Kaggle has no competition {slug!r} (404); check luigi.cfg [kaggle] competition"
            ) from None
        raise KaggleError(f"{what}: Kaggle refused the request ({status}: {said})") from None
    except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
        raise KaggleError(
            f"{what}: cannot reach Kaggle at {_endpoint()} ({type(error).__name__}); check the network and try again"
        ) from None


def client(slug: str) -> Any:
    """The official client's KaggleApi, authenticated from its own sources of credentials."""
    with contextlib.redirect_stdout(io.StringIO()):  # importing `kaggle` authenticates, noisily
        try:
            from kaggle.api.kaggle_api_extended import KaggleApi
        except ImportError as error:
            raise KaggleError(
                f"the kaggle client is not installed ({error}); run `make install` (it needs Python >= 3.11)"
            ) from None
    api = KaggleApi()
    with errors_as_one_line(f"Kaggle competition {slug}", slug):
        try:
            api.authenticate()
        except SystemExit:  # the client's way of saying it found no credentials
            raise ConfigError(NO_CREDENTIALS) from None
    return api


# --- download -----------------------------------------------------------------------------------


@dataclass
class Archive:
    """A downloaded competition archive and what Kaggle said about it."""

    path: Path
    size: int
    last_modified: str | None
    etag: str | None


def download(
    api: Any, slug: str, folder: Path, attempts: int, arriving: Callable[[Path], None] | None = None
) -> Archive:
    """The competition's archive into folder, by the requests `kaggle competitions download`
    makes (the data-files call, its redirect, the client's own streaming download with
    `attempts` tries), named as the client names it. `arriving(path)` is called as the bytes
    start to arrive in path."""
    from kagglesdk.competitions.types.competition_api_service import ApiDownloadDataFilesRequest

    if attempts < 1:
        raise ConfigError(f"luigi.cfg [kaggle] max_attempts = {attempts}: need 1 or more")
    what = f"Kaggle competition {slug}"
    with errors_as_one_line(what, slug), api.build_kaggle_client() as kaggle:
        request = ApiDownloadDataFilesRequest()
        request.competition_name = slug
        response = kaggle.competitions.competition_api_client.download_data_files(request)
        url = response.url.split("?")[0]
        path = folder / f"{slug}.{url.split('.')[-1]}"
        if arriving:
            arriving(path)
        try:
            api.download_file(response, str(path), kaggle.http_client(), quiet=True, max_retries=attempts - 1)
        except ValueError as error:  # the client's size check
            raise KaggleError(f"{what}: the archive arrived incomplete ({error}); run `make download` again") from None
    headers = response.headers
    return Archive(path, path.stat().st_size, headers.get("Last-Modified"), headers.get("ETag"))


# --- submissions --------------------------------------------------------------------------------


def submit(api: Any, slug: str, path: Path, message: str) -> int:
    """Upload a submission file as `kaggle competitions submit` does; Kaggle's submission ref."""
    with errors_as_one_line(f"submit {shown(path)} to {slug}", slug):
        response = api.competition_submit(str(path), message, slug, quiet=True)
    if not response.ref:  # the client reports a failed upload in the message, without raising
        raise KaggleError(
            f"submit {shown(path)} to {slug}: the upload failed ({_one_line(response.message)}); "
            "nothing was submitted, run `make submit` again"
        )
    return int(response.ref)


def submissions(api: Any, slug: str) -> list[dict[str, Any]]:
    """Every submission of this account to the competition (`kaggle competitions submissions`),
    newest first: ref, description, status (pending, complete, error) and public score."""
    from kagglesdk.competitions.types.competition_api_service import ApiListSubmissionsRequest

    found: list[dict[str, Any]] = []
    token = ""
    with errors_as_one_line(f"submissions of {slug}", slug), api.build_kaggle_client() as kaggle:
        for _ in range(MAX_PAGES):
            request = ApiListSubmissionsRequest()
            request.competition_name = slug
            request.page_size = PAGE_SIZE
            request.page_token = token
            response = kaggle.competitions.competition_api_client.list_submissions(request)
            for item in response.submissions:
                found.append(
                    {
                        "ref": int(item.ref),
                        "description": item.description or "",
                        "status": item.status.name.lower(),
                        "public_score": item.public_score or None,
                        "date": item.date.isoformat() if item.date else None,
                    }
                )
            token = response.next_page_token
            if not token:
                break
    return found
