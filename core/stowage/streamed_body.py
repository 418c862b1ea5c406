"""Request bodies handed to the application while they arrive, instead of after the last byte.

waitress receives a whole body before it runs the application: in memory up to ``inbuf_overflow``
(512 KiB), spooled to a temporary file above that. For an upload that means every byte is written twice
(temporary file, then blob store) and hashed only after the client is done, so a 1 GiB PUT ran at 0.14x of
nginx WebDAV. The bundled server (:mod:`stowage.server`) streams instead:

- A body of at least :data:`STREAM_THRESHOLD` bytes, or a chunked one, makes the request *complete at its
  headers*: it is dispatched to a worker thread at once, with a :class:`BodyPipe` as ``wsgi.input``.
- The connection's event loop feeds the pipe as bytes arrive (waitress's own ``FixedStreamReceiver`` and
  ``ChunkedReceiver`` parse the framing into it). The pipe is bounded: while it holds
  :data:`PIPE_BYTES` the channel stops reading the socket (``readable()``), so TCP flow control slows the
  client down; the reader wakes the event loop when it made room.
- ``Expect: 100-continue`` is answered when the application first reads the body, so a handler that
  refuses a request without reading it (401, 403, 404, 413...) never makes the client send it.
- A body the application did not read to its end closes the connection after the response (the next
  request's bytes could not be told from the rest of the body). A client that goes away, stalls for
  ``channel_timeout`` or breaks the chunked framing makes the next read raise
  :class:`~stowage.errors.IncompleteBody` / :class:`~stowage.errors.RequestTimeout`, and a chunked body
  past ``max_request_body_size`` :class:`~stowage.errors.PayloadTooLarge`, so the blob writer is aborted and
  nothing is stored.
- A streamed request holds a worker thread while its body arrives, so at most one thread fewer than the
  pool streams at a time (:class:`StreamSlots`); further large bodies are received whole first, as before,
  and small requests always find a thread.
"""

from __future__ import annotations

import collections
import threading
from typing import Any, Callable

from waitress.receiver import ChunkedReceiver
from waitress.rfc7230 import CHUNK_EXT_RE, ONLY_HEXDIG_RE
from waitress.utilities import BadRequest, find_double_newline

from stowage.errors import IncompleteBody, PayloadTooLarge, RequestTimeout, StowageError

#: bodies this large are streamed: waitress's ``inbuf_overflow``, above which it would spool to disk.
STREAM_THRESHOLD = 512 * 1024
#: how much of a body waits in memory for the application before the channel stops reading.
PIPE_BYTES = 4 * 1024 * 1024
#: bounds on a chunk-size line and on a chunked body's trailer (waitress has none: both count as body).
MAX_CONTROL_LINE = 4096
MAX_TRAILER = 64 * 1024
#: set in the environ of a streamed request without a length (chunked): ``wsgi.input`` ends at its end.
BODY_UNTIL_EOF = "stowage.body_until_eof"


class StreamSlots:
    """How many requests of one server may stream at once: the pool's threads less one."""

    def __init__(self, threads: int):
        self.limit = max(1, threads - 1)
        self.active = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.active >= self.limit:
                return False
            self.active += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self.active -= 1


class BodyPipe:
    """A bounded byte queue from the event loop (:meth:`append`, :meth:`finish`, :meth:`fail`) to the
    worker thread running the request (:meth:`read`, :meth:`readline`); it is the request's
    ``wsgi.input`` and, for waitress's receivers, the buffer they write into."""

    def __init__(self, *, timeout: float, wake: Callable[[], None], release: Callable[[], None],
                 send_continue: Callable[[], None] | None = None, limit: int = PIPE_BYTES):
        self._cond = threading.Condition()
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._paused = False
        self._limit = limit
        self._timeout = timeout
        self._wake = wake
        self._release: Callable[[], None] | None = release
        self._send_continue = send_continue
        self.received = 0
        self.done = False
        self.error: StowageError | None = None
        self.closed = False

    # -- the event loop's side ------------------------------------------------------------------------
    def append(self, data: bytes) -> None:
        with self._cond:
            self.received += len(data)
            if self.closed:
                return  # nobody will read it: received and dropped
            self._chunks.append(bytes(data))
            self._buffered += len(data)
            if self._buffered >= self._limit:
                self._paused = True
            self._cond.notify()

    def __len__(self) -> int:
        return self.received  # what waitress's ChunkedReceiver reports as the body's length

    @property
    def full(self) -> bool:
        """The channel should not read: the pipe filled up and was not drained to half since (a wake-up per
        half pipe, not per read, when the application is the slower side)."""
        return self._paused

    @property
    def complete(self) -> bool:
        """Every byte of the body arrived and its framing was right."""
        return self.done and self.error is None

    def finish(self) -> None:
        with self._cond:
            self.done = True
            self._cond.notify_all()

    def fail(self, error: StowageError) -> None:
        with self._cond:
            if not self.done and self.error is None:
                self.error = error
                self._cond.notify_all()

    # -- waitress's buffer interface (``request.get_body_stream()``, ``request.close()``) ---------------
    def getfile(self) -> "BodyPipe":
        return self

    def getbuf(self) -> "BodyPipe":
        return self

    def close(self) -> None:
        """The request is over: drop what is buffered and whatever still arrives, free the stream slot."""
        with self._cond:
            self.closed = True
            self._chunks.clear()
            self._buffered = 0
            self._paused = False
            self._send_continue = None
            release, self._release = self._release, None
            self._cond.notify_all()
        if release is not None:
            release()
        self._wake()  # a channel that stopped reading on a full pipe reads (and drops) again

    def response_started(self) -> None:
        """No ``100 Continue`` may be sent once the response is under way."""
        self._send_continue = None

    # -- the worker thread's side ---------------------------------------------------------------------
    def read(self, size: int | None = -1) -> bytes:
        """Exactly ``size`` bytes, fewer only at the end of the body (a file's semantics: falcon's
        ``BoundedStream`` counts what it asked for, not what it got)."""
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(1024 * 1024), b""))
        pieces: list[bytes] = []
        wanted = size
        while wanted > 0:
            piece = self._read_some(wanted)
            if not piece:
                break
            pieces.append(piece)
            wanted -= len(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def _read_some(self, size: int) -> bytes:
        """At most ``size`` bytes, as soon as any are there."""
        self._continue()
        with self._cond:
            self._await_data()
            if not self._chunks:
                return b""
            first = self._chunks[0]
            if len(first) <= size:
                self._chunks.popleft()
                data = first
            else:
                data = first[:size]
                self._chunks[0] = first[size:]
            self._buffered -= len(data)
            wake = self._paused and self._buffered <= self._limit // 2
            if wake:
                self._paused = False
        if wake:
            self._wake()  # the channel stopped reading when the pipe filled up
        return data

    def readline(self, size: int | None = -1) -> bytes:
        line = bytearray()
        while size is None or size < 0 or len(line) < size:
            want = 64 * 1024 if size is None or size < 0 else size - len(line)
            data = self._read_some(want)
            if not data:
                break
            end = data.find(b"\n")
            if end >= 0:
                line += data[:end + 1]
                self._unread(data[end + 1:])
                break
            line += data
        return bytes(line)

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self) -> Any:
        return iter(self.readline, b"")

    def _unread(self, data: bytes) -> None:
        if data:
            with self._cond:
                self._chunks.appendleft(data)
                self._buffered += len(data)

    def _continue(self) -> None:
        send, self._send_continue = self._send_continue, None
        if send is not None:
            send()

    def _await_data(self) -> None:
        """Wait (holding the condition) until a chunk is there or the body is over; raise how it ended badly."""
        while not self._chunks:
            if self.closed or self.done:
                return
            if self.error is not None:
                raise self.error
            if not self._cond.wait(self._timeout):
                self.error = RequestTimeout(f"no part of the request body arrived for {self._timeout:g} s")
                raise self.error


class StreamingChunkedReceiver(ChunkedReceiver):
    """waitress's chunked-body parser, without its copies: it re-slices the rest of the received bytes at
    every chunk (Go clients such as skopeo send 32 KiB chunks: ~16 copies of each 1 MiB received, a third
    of the event loop's time in a docker push). This walks the bytes with an index; the framing rules and
    errors are waitress's, plus bounds on a control line and on the trailer."""

    def received(self, s: bytes) -> int:
        if self.completed:
            return 0
        size = len(s)
        pos, delta = 0, 0  # index in ``s``; ``pos + delta`` is the index in what was received
        while pos < len(s):
            if self.chunk_remainder > 0:
                take = min(self.chunk_remainder, len(s) - pos)
                self.buf.append(s if take == len(s) else s[pos:pos + take])
                pos += take
                self.chunk_remainder -= take
                if self.chunk_remainder == 0:
                    self.validate_chunk_end = True
            elif self.validate_chunk_end:
                carried = self.chunk_end
                end = carried + s[pos:pos + 2 - len(carried)]
                pos += len(end) - len(carried)
                if len(end) < 2:
                    self.chunk_end = end
                    continue
                self.chunk_end = b""
                self.validate_chunk_end = False
                if end != b"\r\n":
                    self.error = BadRequest("Chunk not properly terminated")
                    self.all_chunks_received = True
                    return size
            elif not self.all_chunks_received:
                if self.control_line:  # a line split over two receives: join it (rare, small)
                    s, delta, pos = self.control_line + s[pos:], pos + delta - len(self.control_line), 0
                    self.control_line = b""
                newline = s.find(b"\r\n", pos)
                if newline < 0:
                    if len(s) - pos > MAX_CONTROL_LINE:
                        self.error = BadRequest("Chunk size line too long")
                        self.all_chunks_received = True
                        return size
                    self.control_line = s[pos:]
                    break
                line, pos = s[pos:newline], newline + 2
                if not line:
                    continue  # waitress tolerates empty lines between chunks
                semi = line.find(b";")
                if semi >= 0:
                    if not CHUNK_EXT_RE.match(line[semi:]):
                        self.error = BadRequest("Invalid chunk extension")
                        self.all_chunks_received = True
                        return size
                    line = line[:semi]
                if not ONLY_HEXDIG_RE.match(line):
                    self.error = BadRequest("Invalid chunk size")
                    self.all_chunks_received = True
                    return size
                length = int(line, 16)
                if length > 0:
                    self.chunk_remainder = length
                else:
                    self.all_chunks_received = True
            else:
                started = pos + delta - len(self.trailer)  # where the trailer began, in what was received
                trailer = self.trailer + s[pos:]
                if trailer.startswith(b"\r\n"):
                    self.completed = True
                    return started + 2
                end = find_double_newline(trailer)
                if end >= 0:
                    self.completed = True
                    self.trailer = trailer[:end]
                    return started + end
                if len(trailer) > MAX_TRAILER:
                    self.error = BadRequest("Chunked trailer too long")
                    return size
                self.trailer = trailer
                break
        return size


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the request body exceeds the server's limit of {limit} bytes")


def incomplete(reason: str) -> IncompleteBody:
    return IncompleteBody(f"the request body is incomplete: {reason}; nothing was stored")
