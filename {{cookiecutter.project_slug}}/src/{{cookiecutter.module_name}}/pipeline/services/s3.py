"""Talking to S3: the client, key names, and botocore's errors as one-line PipelineErrors.

Credentials come only from boto3's own chain (environment, `~/.aws` profiles, instance roles)
and so does the endpoint (`AWS_ENDPOINT_URL_S3` or the profile's `endpoint_url`), so the same
code talks to AWS or to any S3-compatible store. boto3 is imported here, lazily: an up-to-date
run never needs it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from ..config import s3, shown
from ..errors import ConfigError, S3Error

_DENIED = {"403", "AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}
_CHANGED = {"412", "PreconditionFailed"}
_MISSING_KEY = {"404", "NoSuchKey", "NotFound"}


def bucket() -> str:
    """The configured bucket; a ConfigError when there is none."""
    name = s3().bucket
    if not name:
        raise ConfigError("luigi.cfg [s3] bucket is empty: set it to the bucket that holds the competition files")
    return name


def key_of(name: str) -> str:
    """The object key of a file name relative to [s3] prefix."""
    prefix = s3().prefix.strip("/")
    return f"{prefix}/{name}" if prefix else name


def url(key: str) -> str:
    return f"s3://{s3().bucket}/{key}"


def local_path(name: str, folder: Path, what: str = "luigi.cfg [s3] files") -> Path:
    """Where a file named by a key (relative to the prefix) goes inside folder; a name that is
    empty, absolute, holds '..' or resolves outside folder (through a symlink) is refused."""
    parts = PurePosixPath(name).parts
    if not name or name.startswith(("/", "\\")) or ".." in parts or "\\" in name or name.endswith("/"):
        raise ConfigError(f"{what}: {name!r} is not a plain relative file name (no '..', no leading '/')")
    path = folder.joinpath(*parts)
    if not path.resolve().is_relative_to(folder.resolve()):
        raise ConfigError(f"{what}: {name!r} would be written outside {shown(folder)}")
    return path


def client() -> Any:
    """An S3 client from boto3's default chain, with botocore's standard retries."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    attempts = s3().max_attempts
    if attempts < 1:
        raise ConfigError(f"luigi.cfg [s3] max_attempts = {attempts}: need 1 or more")
    # A new session each time: boto3's default session would keep the credentials it found first.
    try:
        session = boto3.session.Session()
        return session.client("s3", config=Config(retries={"mode": "standard", "max_attempts": attempts}))
    except BotoCoreError as error:  # an unknown profile, a malformed endpoint URL ...
        raise ConfigError(
            f"cannot set up the S3 client ({error}); check AWS_PROFILE, AWS_ENDPOINT_URL_S3 and ~/.aws/config"
        ) from None


def _code(error: Any) -> str:
    response = getattr(error, "response", {}) or {}
    return str(response.get("Error", {}).get("Code") or response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


def _bucket_exists(s3_client: Any, name: str) -> bool:
    """Whether a HEAD of the bucket says it exists (a 404 on an object does not tell which is missing)."""
    from botocore.exceptions import ClientError

    try:
        s3_client.head_bucket(Bucket=name)
    except ClientError as error:
        return _code(error) not in ("404", "NoSuchBucket")
    return True


@contextlib.contextmanager
def errors_as_one_line(s3_client: Any, target: str) -> Iterator[None]:
    """Turn botocore's and s3transfer's exceptions about `target` (an s3:// URL) into S3Error or
    ConfigError with one line saying what is wrong and what to check."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionError,
        FlexibleChecksumError,
        HTTPClientError,
        NoCredentialsError,
        PartialCredentialsError,
    )
    from s3transfer.exceptions import RetriesExceededError, S3DownloadFailedError

    endpoint = s3_client.meta.endpoint_url
    attempts = s3().max_attempts
    try:
        yield
    except (NoCredentialsError, PartialCredentialsError) as error:
        raise ConfigError(
            f"no usable AWS credentials for {target} ({error}): set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (see .env.example)"
        ) from None
    except ClientError as error:
        code = _code(error)
        if code in _DENIED:
            raise S3Error(
                f"{target}: access denied ({code}); check the credentials' permissions on the bucket"
            ) from None
        if code in _CHANGED:
            raise S3Error(f"{target}: the object changed during the download; run `make fetch` again") from None
        if code == "NoSuchBucket" or (code in _MISSING_KEY and not _bucket_exists(s3_client, s3().bucket)):
            raise S3Error(f"s3://{s3().bucket}: no such bucket at {endpoint}; check luigi.cfg [s3] bucket") from None
        if code in _MISSING_KEY:
            raise S3Error(f"{target}: no such object; check luigi.cfg [s3] prefix and files") from None
        raise S3Error(f"{target}: S3 refused the request ({code}: {error})") from None
    except S3DownloadFailedError as error:  # s3transfer's name for a 412 on one of the parts
        raise S3Error(f"{target}: the object changed during the download; run `make fetch` again ({error})") from None
    except FlexibleChecksumError as error:  # botocore's own check of a whole-object GET
        raise S3Error(f"{target}: checksum mismatch ({error}); run `make fetch` again") from None
    except (ConnectionError, HTTPClientError, RetriesExceededError) as error:
        raise S3Error(f"{target}: cannot reach S3 at {endpoint} after {attempts} attempts ({error})") from None
    except BotoCoreError as error:
        raise S3Error(f"{target}: {error}") from None
