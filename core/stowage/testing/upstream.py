"""A real HTTP upstream on loopback with switchable faults, for proxy tests of every format.

:class:`FaultUpstream` serves paths you give it (bytes, or files streamed from disk) with ``ETag``,
``Last-Modified``, ``Content-Length`` and 304 answers to conditional requests, keeps an access log the
test can count, and injects the failures a user meets in practice:

===============================  =============================================================
``stop()`` / ``start()``         the port refuses connections / listens again (same port)
``fault("hang")``                accepts the request and never answers (until cleared or stopped)
``fault("status", status=500)``  answers 500 (or 429, 503, 401, 404...) with a short body
``fault("cut", at=n)``           sends the headers and ``n`` bytes of the body (default: half), then
                                 closes the connection
``put(path, new_content)``       changes the content of a path (new ETag and Last-Modified)
``remove(path)``                 the path answers 404
``throttle(bytes_per_second)``   slows every body down (to keep a download in flight)
``chunked(True)``                sends 200 bodies with ``Transfer-Encoding: chunked``, without
                                 ``Content-Length`` (as servers that compress on the fly do)
``require_auth(...)``            answers 401 without the right basic credentials or bearer token
``redirect(path, to)``           answers 302 to another path of this upstream
===============================  =============================================================

Faults apply to one path (``path=...``) or to every path. The ``fault_upstream`` pytest fixture gives a
started instance that is stopped after the test.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import threading
import time
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from attrs import define, field, frozen

BODY_CHUNK = 256 * 1024


@frozen
class LoggedRequest:
    """One request the upstream received, and what it answered."""

    method: str
    path: str
    status: int
    headers: dict[str, str]
    time: float

    def header(self, name: str) -> str | None:
        return {k.lower(): v for k, v in self.headers.items()}.get(name.lower())


@define
class _Entry:
    content: bytes | Path
    size: int
    etag: str
    last_modified: float
    content_type: str

    def open(self) -> IO[bytes]:
        if isinstance(self.content, Path):
            return open(self.content, "rb")
        import io

        return io.BytesIO(self.content)


@define
class _Fault:
    kind: str
    status: int = 500
    at: int | None = None
    #: how many more requests the fault applies to (None: until cleared).
    times: int | None = None


@define
class _State:
    entries: dict[str, _Entry] = field(factory=dict)
    faults: dict[str | None, _Fault] = field(factory=dict)
    redirects: dict[str, str] = field(factory=dict)
    log: list[LoggedRequest] = field(factory=list)
    lock: threading.Lock = field(factory=threading.Lock)
    release: threading.Event = field(factory=threading.Event)
    bytes_per_second: float | None = None
    chunked: bool = False
    auth: str | None = None
    connections: set = field(factory=set)


class FaultUpstream:
    """A threaded HTTP/1.1 server on ``127.0.0.1`` serving a dict of paths, with fault injection."""

    def __init__(self, port: int = 0):
        self._state = _State()
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> "FaultUpstream":
        """Listen (again, on the same port after :meth:`stop`)."""
        if self._server is not None:
            return self
        self._state.release.clear()
        handler = type("Handler", (_Handler,), {"state": self._state})
        server = _Server(("127.0.0.1", self._port), handler)
        server.daemon_threads = True
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fault-upstream-{self._port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: new connections are refused; hung requests are let go."""
        server, self._server = self._server, None
        if server is None:
            return
        self._state.release.set()
        server.shutdown()
        server.server_close()
        with self._state.lock:
            connections = list(self._state.connections)
        for connection in connections:  # kept-alive connections die with the server, as in real life
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> "FaultUpstream":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- content --------------------------------------------------------------------------------------
    def put(self, path: str, content: bytes | str | Path, *, content_type: str = "application/octet-stream",
            last_modified: float | None = None) -> str:
        """Serve ``content`` (bytes, or a file streamed from disk) at ``path``; returns its ETag."""
        path = path.lstrip("/")
        if isinstance(content, str):
            content = content.encode()
        modified = time.time() if last_modified is None else last_modified
        if isinstance(content, Path):
            stat = content.stat()
            size = stat.st_size
            etag = f'"{size:x}-{stat.st_mtime_ns:x}-{int(modified * 1000):x}"'
        else:
            size = len(content)
            etag = f'"{hashlib.sha256(content).hexdigest()[:32]}"'
        with self._state.lock:
            self._state.entries[path] = _Entry(content, size, etag, modified, content_type)
        return etag

    def remove(self, path: str) -> None:
        with self._state.lock:
            self._state.entries.pop(path.lstrip("/"), None)

    def redirect(self, path: str, to: str) -> None:
        """Answer ``path`` with a 302 to ``to`` (a path of this upstream, or an absolute URL)."""
        with self._state.lock:
            self._state.redirects[path.lstrip("/")] = to

    # -- faults ---------------------------------------------------------------------------------------
    def fault(self, kind: str | None, path: str | None = None, *, status: int = 500, at: int | None = None,
              times: int | None = None) -> None:
        """Inject a fault for ``path`` (every path when None): ``hang``, ``status`` or ``cut``; None clears.

        :param status: the status a ``status`` fault answers.
        :param at: how many body bytes a ``cut`` fault sends before closing (default: half).
        :param times: the fault applies to this many requests, then clears itself (default: until cleared).
        """
        key = path.lstrip("/") if path is not None else None
        with self._state.lock:
            if kind is None:
                self._state.faults.pop(key, None)
            else:
                if kind not in ("hang", "status", "cut"):
                    raise ValueError(f"unknown fault {kind!r}: use hang, status or cut")
                self._state.faults[key] = _Fault(kind, status, at, times)
                if kind == "hang":
                    self._state.release.clear()
        if kind is None and not self._state.faults:
            self._state.release.set()

    def clear_faults(self) -> None:
        with self._state.lock:
            self._state.faults.clear()
        self._state.release.set()

    def throttle(self, bytes_per_second: float | None) -> None:
        """Send bodies at about this rate (None: as fast as possible)."""
        self._state.bytes_per_second = bytes_per_second

    def chunked(self, enabled: bool = True) -> None:
        """Send 200 bodies chunked, without ``Content-Length`` (the size is known only at the end)."""
        self._state.chunked = enabled

    def require_auth(self, *, basic: tuple[str, str] | None = None, bearer: str | None = None) -> None:
        """Answer 401 to requests without these credentials (no arguments: open again)."""
        if basic is not None:
            self._state.auth = "Basic " + base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
        elif bearer is not None:
            self._state.auth = f"Bearer {bearer}"
        else:
            self._state.auth = None

    # -- the access log -------------------------------------------------------------------------------
    @property
    def log(self) -> list[LoggedRequest]:
        with self._state.lock:
            return list(self._state.log)

    def requests(self, path: str | None = None, *, method: str | None = "GET",
                 status: int | None = None) -> list[LoggedRequest]:
        """Logged requests, filtered by path (without the leading ``/``), method and answered status."""
        path = path.lstrip("/") if path is not None else None
        return [entry for entry in self.log
                if (path is None or entry.path == path) and (method is None or entry.method == method)
                and (status is None or entry.status == status)]

    def count(self, path: str | None = None, *, method: str | None = "GET", status: int | None = None) -> int:
        return len(self.requests(path, method=method, status=status))

    def clear_log(self) -> None:
        with self._state.lock:
            self._state.log.clear()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if isinstance(sys.exc_info()[1], OSError):  # clients hanging up (cut, timeouts) are expected
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FaultUpstream/1"
    state: _State

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def setup(self) -> None:
        super().setup()
        with self.state.lock:
            self.state.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.state.lock:
                self.state.connections.discard(self.connection)

    def _record(self, status: int) -> None:
        path = unquote(urlsplit(self.path).path).lstrip("/")
        with self.state.lock:
            self.state.log.append(LoggedRequest(self.command, path, status, dict(self.headers.items()), time.time()))

    def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self._record(status)
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        state = self.state
        path = unquote(urlsplit(self.path).path).lstrip("/")
        with state.lock:
            fault_key = path if path in state.faults else None
            fault = state.faults.get(fault_key)
            if fault is not None and fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    del state.faults[fault_key]
            entry = state.entries.get(path)
            redirect = state.redirects.get(path)
            auth = state.auth
        if fault is not None and fault.kind == "hang":
            self._record(0)
            state.release.wait(600)
            self.close_connection = True
            return
        if fault is not None and fault.kind == "status":
            headers = {"Retry-After": "1"} if fault.status in (429, 503) else {}
            self._answer(fault.status, f"injected {fault.status}\n".encode(), headers)
            return
        if auth is not None and self.headers.get("Authorization") != auth:
            self._answer(401, b"authentication required\n", {"WWW-Authenticate": 'Basic realm="upstream"'})
            return
        if redirect is not None:
            target = redirect if "://" in redirect else "/" + redirect.lstrip("/")
            self._answer(302, b"", {"Location": target})
            return
        if entry is None:
            self._answer(404, b"not found\n")
            return
        headers = {"ETag": entry.etag, "Last-Modified": formatdate(entry.last_modified, usegmt=True),
                   "Content-Type": entry.content_type}
        if _not_modified(self.headers, entry):
            self._answer(304, b"", headers)
            return
        cut_at = None
        if fault is not None and fault.kind == "cut":
            cut_at = fault.at if fault.at is not None else entry.size // 2
        self._record(200)
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        chunked = self.state.chunked
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(entry.size))
        self.end_headers()
        if self.command == "HEAD":
            return
        self._send_body(entry, cut_at, chunked)

    def _send_body(self, entry: _Entry, cut_at: int | None, chunked: bool = False) -> None:
        limit = entry.size if cut_at is None else min(cut_at, entry.size)
        sent = 0
        started = time.monotonic()
        with entry.open() as stream:
            while sent < limit:
                chunk = stream.read(min(BODY_CHUNK, limit - sent))
                if not chunk:
                    break
                try:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                except OSError:
                    self.close_connection = True
                    return
                sent += len(chunk)
                rate = self.state.bytes_per_second
                if rate:
                    ahead = sent / rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
        if chunked and cut_at is None:
            try:
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                self.close_connection = True
                return
        if cut_at is not None:
            self.wfile.flush()
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.close_connection = True


def _not_modified(headers: Any, entry: _Entry) -> bool:
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:
        return any(tag.strip() in (entry.etag, "*") for tag in if_none_match.split(","))
    since = headers.get("If-Modified-Since")
    if since:
        try:
            return int(entry.last_modified) <= parsedate_to_datetime(since).timestamp()
        except (TypeError, ValueError):
            return False
    return False


def sparse_file(path: Path, size: int, *, pattern: bytes = b"") -> Path:
    """Create a file of ``size`` bytes without holding it in memory (sparse zeros, or ``pattern``
    repeated in 1 MiB writes)."""
    with open(path, "wb") as out:
        if not pattern:
            out.truncate(size)
        else:
            block = (pattern * (1024 * 1024 // len(pattern) + 1))[:1024 * 1024]
            written = 0
            while written < size:
                piece = block[:min(len(block), size - written)]
                out.write(piece)
                written += len(piece)
    os.utime(path)
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def curl_first_byte(url: str, *args: str, timeout: float = 60) -> tuple[str, float, float]:
    """GET ``url`` with curl: (HTTP status, seconds to the first body byte, seconds in all).

    Against a throttled :class:`FaultUpstream`, ``total - first`` shows whether a proxy miss was streamed
    (the client received bytes while the remote was still sending) or sent only once it was cached.
    """
    import subprocess

    result = subprocess.run(["curl", "-sS", "-o", os.devnull, "-w", "%{http_code} %{time_starttransfer} %{time_total}",
                             *args, url], capture_output=True, text=True, timeout=timeout)
    status, first, total = result.stdout.split()
    return status, float(first), float(total)
