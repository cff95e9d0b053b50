"""A fake Kaggle API on 127.0.0.1 that answers the requests the official `kaggle` client (2.x) makes.

The client's `KAGGLE_API_ENVIRONMENT=LOCALHOST` sends its calls to `http://localhost/api/v1/
<service>/<method>` (JSON POSTs), and requests honours `HTTP_PROXY`, so pointing the proxy at
this server sends every request here, the archive and the upload too: nothing leaves the machine.
Credentials are fake and `HOME` is a temporary folder (see `environment()`), so the user's own
are never read or sent.

What it answers (from kagglesdk's competition_api_service and kaggle_api_extended):
- DownloadDataFiles: a 302 to `/files/<competition>.zip`, which serves the archive (Content-Length,
  Last-Modified, ETag);
- StartSubmissionUpload (token and upload URL), the PUT of the file to that URL, CreateSubmission (ref);
- ListSubmissions (paged), IntrospectToken (for KAGGLE_API_TOKEN).
`fail(name, 401 | 403 | 404 | 500 | "drop" | "cut")` makes a request fail (drop: no answer; cut:
the archive stops half-way); `requests` logs each one.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

USERNAME, KEY, TOKEN = "tester", "fake-key-for-tests", "fake-access-token"
MESSAGES = {
    401: "Unauthenticated",
    403: "You must accept this competition's rules before you'll be able to download files.",
    404: "Competition not found",
    500: "Internal error",
}


@dataclass
class Request:
    method: str
    name: str  # the API method (DownloadDataFiles ...), or "archive" / "upload"
    body: Any
    authorization: str


@dataclass
class FakeKaggle:
    """The fake API's state: competitions and their archives, submissions, planned failures."""

    archives: dict[str, Path] = field(default_factory=dict)  # competition -> zip file served
    rules_accepted: set[str] = field(default_factory=set)
    submissions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # newest first
    uploads: dict[str, bytes] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    failures: dict[str, int | str] = field(default_factory=dict)
    port: int = 0
    rate: float | None = None  # bytes per second the archive is sent at (None: as fast as it goes)
    _next_ref: int = 50001

    # --- setting up and looking -----------------------------------------------------------------

    def competition(self, slug: str, archive: Path, rules_accepted: bool = True) -> None:
        self.archives[slug] = archive
        if rules_accepted:
            self.rules_accepted.add(slug)

    def fail(self, name: str, how: int | str) -> None:
        """Answer every `name` request with HTTP status `how`, or drop its connection ("drop")."""
        self.failures[name] = how

    def count(self, name: str) -> int:
        return sum(1 for request in self.requests if request.name == name)

    def score(self, ref: int, public_score: str, status: str = "COMPLETE") -> None:
        for items in self.submissions.values():
            for item in items:
                if item["ref"] == ref:
                    item.update(status=status, publicScore=public_score)

    def add_submission(self, slug: str, description: str, status: str = "PENDING", public_score: str = "") -> int:
        """A submission made elsewhere (the website, another machine); its ref."""
        ref, self._next_ref = self._next_ref, self._next_ref + 1
        when = datetime.now(timezone.utc).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
        item = {"ref": ref, "description": description, "status": status, "publicScore": public_score, "date": when}
        self.submissions.setdefault(slug, []).insert(0, item)
        return ref

    def environment(self, home: Path) -> dict[str, str | None]:
        """Variables that point the client here, with fake credentials and a HOME of their own;
        None: a variable to remove (credentials of the user's own, another proxy)."""
        proxy = f"http://127.0.0.1:{self.port}"
        return {
            "KAGGLE_API_TOKEN": None,
            "KAGGLE_IAP_TOKEN": None,
            "KAGGLE_KERNEL_RUN_TYPE": None,
            "ALL_PROXY": None,
            "all_proxy": None,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "KAGGLE_CONFIG_DIR": str(home / ".kaggle"),
            "KAGGLE_API_ENVIRONMENT": "LOCALHOST",
            "KAGGLE_USERNAME": USERNAME,
            "KAGGLE_KEY": KEY,
            "HTTP_PROXY": proxy,
            "http_proxy": proxy,
            "NO_PROXY": "",
            "no_proxy": "",
        }

    # --- answering ------------------------------------------------------------------------------

    def answer(self, handler: _Handler, method: str) -> None:
        path = urlsplit(handler.path).path
        if path.startswith("/api/v1/"):
            name = path.rsplit("/", 1)[-1]
        elif path.startswith("/files/"):
            name = "archive"
        elif path.startswith("/upload/"):
            name = "upload"
        else:
            name = path
        raw = handler.read_body()
        body: Any = raw
        if name not in ("archive", "upload"):
            body = json.loads(raw or b"{}")
        self.requests.append(Request(method, name, body, handler.headers.get("Authorization", "")))
        how = self.failures.get(name)
        if how == "drop":
            handler.drop()
            return
        if isinstance(how, int):
            handler.send_json({"code": how, "message": MESSAGES.get(how, "error")}, how)
            return
        if name == "archive":
            archive = self.archives[path.removeprefix("/files/").removesuffix(".zip")]
            handler.send_file(archive, cut=how == "cut", rate=self.rate)
            return
        if name == "upload":
            self.uploads[path.removeprefix("/upload/")] = raw
            handler.send_json({}, 200)
            return
        if not self._authorized(handler.headers.get("Authorization", ""), name):
            handler.send_json({"code": 401, "message": MESSAGES[401]}, 401)
            return
        method_of = {
            "IntrospectToken": self._introspect_token,
            "DownloadDataFiles": self._download_data_files,
            "StartSubmissionUpload": self._start_submission_upload,
            "CreateSubmission": self._create_submission,
            "ListSubmissions": self._list_submissions,
        }.get(name)
        if method_of is None:
            handler.send_json({"code": 404, "message": f"no method {name}"}, 404)
            return
        method_of(handler, body)

    def _authorized(self, header: str, name: str) -> bool:
        if name == "IntrospectToken":
            return True
        if header.startswith("Basic "):
            return base64.b64decode(header[6:]).decode() == f"{USERNAME}:{KEY}"
        return header == f"Bearer {TOKEN}"

    def _known(self, handler: _Handler, slug: str) -> bool:
        if slug not in self.archives:
            handler.send_json({"code": 404, "message": MESSAGES[404]}, 404)
            return False
        if slug not in self.rules_accepted:
            handler.send_json({"code": 403, "message": MESSAGES[403]}, 403)
            return False
        return True

    def _introspect_token(self, handler: _Handler, body: dict[str, Any]) -> None:
        handler.send_json({"active": body.get("token") == TOKEN, "username": USERNAME})

    def _download_data_files(self, handler: _Handler, body: dict[str, Any]) -> None:
        slug = body.get("competitionName", "")
        if self._known(handler, slug):
            handler.redirect(f"http://localhost/files/{slug}.zip?X-Goog-Signature=fake")

    def _start_submission_upload(self, handler: _Handler, body: dict[str, Any]) -> None:
        if self._known(handler, body.get("competitionName", "")):
            token = f"blob-{len(self.requests)}"
            handler.send_json({"token": token, "createUrl": f"http://localhost/upload/{token}"})

    def _create_submission(self, handler: _Handler, body: dict[str, Any]) -> None:
        slug = body.get("competitionName", "")
        if not self._known(handler, slug):
            return
        if body.get("blobFileTokens") not in self.uploads:
            handler.send_json({"code": 400, "message": "no such upload"}, 400)
            return
        ref = self.add_submission(slug, body.get("submissionDescription", ""))
        handler.send_json({"message": "Successfully submitted to " + slug, "ref": ref})

    def _list_submissions(self, handler: _Handler, body: dict[str, Any]) -> None:
        slug = body.get("competitionName", "")
        if not self._known(handler, slug):
            return
        items = self.submissions.get(slug, [])
        start = int(body.get("pageToken") or 0)
        size = int(body.get("pageSize") or 20)
        page = items[start : start + size]
        token = str(start + size) if start + size < len(items) else ""
        handler.send_json({"submissions": page, "nextPageToken": token})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        self.server.fake.answer(self, "GET")

    def do_POST(self) -> None:
        self.server.fake.answer(self, "POST")

    def do_PUT(self) -> None:
        self.server.fake.answer(self, "PUT")

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send_json(self, data: dict[str, Any], status: int = 200) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def send_file(self, path: Path, cut: bool = False, rate: float | None = None) -> None:
        stat = path.stat()
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(stat.st_size))
        self.send_header("Last-Modified", formatdate(stat.st_mtime, usegmt=True))
        self.send_header("ETag", f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"')
        self.end_headers()
        self.wfile.flush()
        end = stat.st_size // 2 if cut else stat.st_size
        started, sent = time.perf_counter(), 0
        with open(path, "rb") as source:
            while sent < end:  # a twentieth of a second at a time when the rate is limited
                count = min(end - sent, int(rate / 20) if rate else end)
                sent += self.connection.sendfile(source, offset=sent, count=count)
                if rate:
                    time.sleep(max(0.0, started + sent / rate - time.perf_counter()))
        if cut:
            self.drop()

    def drop(self) -> None:
        """Close the connection without an answer, as a network failure would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeKaggle


@contextlib.contextmanager
def running(fake: FakeKaggle | None = None) -> Iterator[FakeKaggle]:
    """The fake on 127.0.0.1 and a free port, in a thread of this process; stopped at the end."""
    fake = fake or FakeKaggle()
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = fake
    fake.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
