"""The request log: one line per HTTP request in the NCSA combined format (as Nexus's ``request.log``),
followed by the duration in milliseconds::

    127.0.0.1 - admin [06/Dec/2026:08:30:00 +0000] "GET /repository/raw/a.txt HTTP/1.1" 200 1234 "-" "curl/8.5.0" 3

The fields are the client address, ``-`` (identd), the authenticated user (``-``: anonymous), the time
the request arrived, the request line, the status, the body bytes sent (``-`` for none), the
``Referer`` and ``User-Agent`` headers, and how long the request took to its last byte.

A line is written when the response is finished, so a streamed download (a proxy miss whose size is
known only at its end) logs the bytes really sent, and a download the client abandons logs what it got.
File downloads keep waitress's fast path (``wsgi.file_wrapper``): the wrapper is a subclass that counts
what waitress sends. Lines are buffered in memory and appended with one ``write`` per batch (complete
lines only, ``O_APPEND``: worker processes sharing one file never interleave inside a line), at least
once a second and whenever 64 KiB are waiting; a request pays a list append under an uncontended lock.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from waitress.buffers import ReadOnlyFileBasedBuffer

from stowage.errors import ConfigurationError

#: the ``requestLog`` values that turn the log off.
OFF = ("", "off", "none", "false")
STDOUT = "-"
FLUSH_SECONDS = 1.0
BUFFER_BYTES = 64 * 1024


def request_log_target(setting: str, data_path: Path) -> str | None:
    """Where ``[server] requestLog`` sends lines: a file path, ``-`` (standard output) or None (off).
    A relative path is under the data directory."""
    value = setting.strip()
    if value.lower() in OFF:
        return None
    if value == STDOUT:
        return STDOUT
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else data_path / path)


class LineWriter:
    """Buffered, append-only output of complete lines, flushed by a background thread."""

    def __init__(self, target: str, *, flush_seconds: float = FLUSH_SECONDS, buffer_bytes: int = BUFFER_BYTES):
        if target == STDOUT:
            self.fd = sys.stdout.fileno()
            self._owns_fd = False
        else:
            try:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                self.fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            except OSError as error:
                raise ConfigurationError(f"requestLog: cannot open {target}: {error.strerror}") from None
            self._owns_fd = True
        self.target = target
        self.buffer_bytes = buffer_bytes
        self._lines: list[bytes] = []
        self._size = 0
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._closed = threading.Event()
        self._flush_seconds = flush_seconds
        self._thread = threading.Thread(target=self._flush_forever, name="stowage-request-log", daemon=True)
        self._thread.start()

    def write(self, line: bytes) -> None:
        if self._closed.is_set():
            return
        with self._lock:
            self._lines.append(line)
            self._size += len(line)
            full = self._size >= self.buffer_bytes
        if full:
            self.flush()

    def flush(self) -> None:
        with self._write_lock:  # batches leave in order
            with self._lock:
                lines, self._lines, self._size = self._lines, [], 0
            if not lines:
                return
            data = memoryview(b"".join(lines))
            try:
                while data:
                    written = os.write(self.fd, data)
                    data = data[written:]
            except OSError as error:  # a full disk must not break serving; say it once per batch
                print(f"stowage: request log {self.target}: {error}", file=sys.stderr)

    def _flush_forever(self) -> None:
        while not self._closed.wait(self._flush_seconds):
            self.flush()

    def close(self) -> None:
        """Flush and stop (idempotent); lines written afterwards are dropped."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._thread.join(timeout=5)
        self.flush()
        if self._owns_fd:
            os.close(self.fd)


def _quoted(value: str | None) -> str:
    """A header or request value inside the line's quotes: quotes, backslashes and control characters
    escaped, so a client cannot forge lines or fields."""
    if not value:
        return "-"
    if value.isprintable() and '"' not in value and "\\" not in value:
        return value
    return "".join(c if c.isprintable() and c not in '"\\' else
                   ("\\" + c if c in '"\\' else f"\\x{ord(c):02x}") for c in value)


class _Clock:
    """``[06/Dec/2026:08:30:00 +0000]``, formatted once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def format(self, moment: float) -> str:
        second = int(moment)
        if second != self._second:
            self._text = time.strftime("[%d/%b/%Y:%H:%M:%S +0000]", time.gmtime(second))
            self._second = second
        return self._text


class _Entry:
    __slots__ = ("log", "environ", "started", "arrived", "status", "done")

    def __init__(self, log: "RequestLogMiddleware", environ: dict):
        self.log = log
        self.environ = environ
        self.arrived = time.time()
        self.started = time.monotonic()
        self.status = "-"
        self.done = False

    def finish(self, sent: int) -> None:
        if self.done:
            return
        self.done = True
        env = self.environ
        uri = env.get("REQUEST_URI") or env.get("RAW_URI") or (
            env.get("PATH_INFO", "") + ("?" + env["QUERY_STRING"] if env.get("QUERY_STRING") else ""))
        request_line = f"{env.get('REQUEST_METHOD', '-')} {uri} {env.get('SERVER_PROTOCOL', '-')}"
        duration = int((time.monotonic() - self.started) * 1000)
        line = (f"{env.get('REMOTE_ADDR') or '-'} - {_quoted(env.get('stowage.user'))} "
                f"{self.log.clock.format(self.arrived)} \"{_quoted(request_line)}\" {self.status} "
                f"{sent or '-'} \"{_quoted(env.get('HTTP_REFERER'))}\" \"{_quoted(env.get('HTTP_USER_AGENT'))}\" "
                f"{duration}\n")
        self.log.writer.write(line.encode("utf-8", "replace"))
        # The environ holds this entry (its ``wsgi.file_wrapper``): drop the way back, so the request's
        # objects are freed by reference counting, not left for the cyclic collector.
        self.environ = None


class _LoggedFileBuffer(ReadOnlyFileBasedBuffer):
    """waitress's ``wsgi.file_wrapper`` (waitress still sends it straight from the file), counting the
    bytes it hands to the socket; the line is written when the last one went, or at close."""

    def __init__(self, entry: _Entry, file: Any, block_size: int = 32768):
        super().__init__(file, block_size)
        self._entry = entry
        self._sent = 0

    def skip(self, numbytes: int, allow_prune: int = 0) -> None:  # waitress: these bytes went out
        super().skip(numbytes, allow_prune)
        self._sent += numbytes
        if self.remain <= 0:
            self._entry.finish(self._sent)

    def next(self) -> bytes:  # waitress iterates when the file cannot seek
        data = super().next()
        self._sent += len(data)
        return data

    __next__ = next

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._entry.finish(self._sent)


class _LoggedIterable:
    def __init__(self, entry: _Entry, body: Iterable[bytes]):
        self._entry = entry
        self._body = body
        self._sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._body:
            self._sent += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._entry.finish(self._sent)


class RequestLogMiddleware:
    """WSGI middleware writing one request-log line per request to ``writer``."""

    def __init__(self, app: Callable, writer: LineWriter):
        self.app = app
        self.writer = writer
        self.clock = _Clock()

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        entry = _Entry(self, environ)

        def logged_start_response(status: str, headers: list, exc_info: Any = None) -> Any:
            entry.status = status[:3]
            return start_response(status, headers, exc_info)

        if environ.get("wsgi.file_wrapper") is ReadOnlyFileBasedBuffer:
            environ["wsgi.file_wrapper"] = lambda file, block_size=32768: _LoggedFileBuffer(entry, file, block_size)
        try:
            body = self.app(environ, logged_start_response)
        except BaseException:
            entry.status = "500"
            entry.finish(0)
            raise
        if isinstance(body, _LoggedFileBuffer):
            return body
        return _LoggedIterable(entry, body)
