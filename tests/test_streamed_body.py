"""Large and chunked request bodies reach the application while they arrive (``stowage.streamed_body``).

Real sockets against the bundled server: a bare WSGI app on :func:`stowage.server.create_listener` shows
the mechanics (dispatch at the headers, flow control, timeouts, thread slots); the Stowage app on a
:class:`~stowage.testing.harness.LiveServer` shows what an upload makes of them.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import threading
import time
from typing import Any, Callable, Iterator

import pytest

from stowage.server import RECV_BYTES, Server
from stowage.streamed_body import PIPE_BYTES, STREAM_THRESHOLD

from core_helpers import read_until_closed, send_head

RAW = {"name": "raw", "format": "raw", "type": "hosted", "online": True,
       "storage": {"blobStoreName": "default", "strictContentTypeValidation": False, "writePolicy": "ALLOW"}}
MIB = 1024 * 1024


# -- a bare listener: the server's mechanics ----------------------------------------------------------
class BareServer:
    """The bundled server's listener around a WSGI app, serving in a thread."""

    def __init__(self, app: Callable, *, threads: int = 4, channel_timeout: int = 300,
                 max_request_body_size: int = 1 << 40):
        from stowage.server import StreamSlots, create_listener

        self.slots = StreamSlots(threads)
        self.listener = create_listener(app, map={}, host="127.0.0.1", port=0, threads=threads,
                                        recv_bytes=RECV_BYTES, channel_timeout=channel_timeout,
                                        max_request_body_size=max_request_body_size, asyncore_use_poll=True,
                                        stream_slots=self.slots)
        self.thread = threading.Thread(target=self.listener.run, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.listener.effective_port

    def close(self) -> None:
        self.listener.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
        self.listener.close()  # the serving thread is a daemon: it ends with the test process


@pytest.fixture
def bare() -> Iterator[Callable[..., BareServer]]:
    servers: list[BareServer] = []

    def factory(app: Callable, **kwargs: Any) -> BareServer:
        servers.append(BareServer(app, **kwargs))
        return servers[-1]

    yield factory
    for server in servers:
        server.close()


def read_response(sock: socket.socket) -> bytes:
    """One response with a Content-Length: its head and body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head_text, _ = data.split(b"\r\n\r\n", 1)
    length = next((int(line.split(b":")[1]) for line in head_text.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(data) < len(head_text) + 4 + length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def digest_app(seen: dict[str, Any]) -> Callable:
    """Answers with the sha256 and length of the body it read; records when it was called and how it ended."""

    def app(environ: dict, start_response: Callable) -> list[bytes]:
        seen["called"].set()
        body = environ["wsgi.input"]
        seen["input"] = body
        if "before_read" in seen:
            seen["before_read"](environ)
        sha, size = hashlib.sha256(), 0
        try:
            while chunk := body.read(MIB):
                sha.update(chunk)
                size += len(chunk)
        except Exception as error:  # what a handler sees: the error the store's writer aborts on
            seen["error"] = error
            start_response(f"{getattr(error, 'status', 500)} X", [("Content-Length", "0")])
            return [b""]
        text = f"{size} {sha.hexdigest()}".encode()
        start_response("200 OK", [("Content-Length", str(len(text)))])
        return [text]

    return app


def new_seen() -> dict[str, Any]:
    return {"called": threading.Event()}


def test_large_body_is_dispatched_at_its_headers(bare):
    seen = new_seen()
    server = bare(digest_app(seen))
    body = os.urandom(3 * MIB)
    with send_head(server.port, "PUT", "/x", {"Content-Length": str(len(body))}) as sock:
        sock.sendall(body[:MIB])
        # waitress would wait for the last byte before calling the app
        assert seen["called"].wait(5), "the application was not called before the body was complete"
        sock.sendall(body[MIB:])
        sock.shutdown(socket.SHUT_WR)
        response = read_until_closed(sock)
    assert response.startswith(b"HTTP/1.1 200"), response
    assert response.endswith(f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode())


def test_small_body_is_received_whole_first(bare):
    seen = new_seen()
    server = bare(digest_app(seen))
    body = os.urandom(STREAM_THRESHOLD - 1)
    with send_head(server.port, "PUT", "/x", {"Content-Length": str(len(body))}) as sock:
        sock.sendall(body[:1000])
        assert not seen["called"].wait(0.5)
        sock.sendall(body[1000:])
        assert seen["called"].wait(5)


def test_full_pipe_stops_reading_the_socket(bare):
    """Flow control: while the app does not read, the server holds at most the pipe plus one receive."""
    release = threading.Event()
    held: dict[str, int] = {}

    def before_read(environ: dict) -> None:
        release.wait(30)
        held["received"] = environ["wsgi.input"].received

    seen = new_seen()
    seen["before_read"] = before_read
    server = bare(digest_app(seen))
    body = os.urandom(64 * MIB)
    with send_head(server.port, "PUT", "/x", {"Content-Length": str(len(body))}) as sock:
        sock.settimeout(2)
        sent = 0
        try:
            while sent < len(body):
                sent += sock.send(body[sent:sent + MIB])
        except socket.timeout:
            pass  # the server stopped reading: the socket buffers are full
        release.set()
        sock.settimeout(30)
        sock.sendall(body[sent:])
        response = read_response(sock)
    assert sent < len(body)
    assert held["received"] <= PIPE_BYTES + RECV_BYTES, held
    assert response.endswith(f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode()), response[:200]


def test_chunked_body_streams_to_its_end(bare):
    seen = new_seen()
    server = bare(digest_app(seen))
    pieces = [os.urandom(n) for n in (1, 300_000, 2 * MIB + 7, 5)]
    with send_head(server.port, "PUT", "/x", {"Transfer-Encoding": "chunked"}) as sock:
        sock.sendall(b"%x\r\n%s\r\n" % (len(pieces[0]), pieces[0]))
        assert seen["called"].wait(5)
        for piece in pieces[1:]:
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        sock.sendall(b"0\r\n\r\n")
        response = read_response(sock)
    body = b"".join(pieces)
    assert response.endswith(f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode()), response


def test_broken_chunked_framing_is_an_incomplete_body(bare):
    seen = new_seen()
    server = bare(digest_app(seen))
    with send_head(server.port, "PUT", "/x", {"Transfer-Encoding": "chunked"}) as sock:
        sock.sendall(b"10\r\n" + b"x" * 16 + b"\r\nzz\r\n")
        response = read_until_closed(sock)
    assert response.startswith(b"HTTP/1.1 400"), response
    assert type(seen["error"]).__name__ == "IncompleteBody"


def test_chunked_body_past_the_limit_is_413(bare):
    seen = new_seen()
    server = bare(digest_app(seen), max_request_body_size=2 * MIB)
    chunk = os.urandom(MIB)
    with send_head(server.port, "PUT", "/x", {"Transfer-Encoding": "chunked"}) as sock:
        try:
            for _ in range(4):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = read_until_closed(sock)
    assert type(seen["error"]).__name__ == "PayloadTooLarge"
    assert not response or response.startswith(b"HTTP/1.1 413"), response


def test_client_that_goes_away_mid_body_breaks_the_read(bare):
    seen = new_seen()
    server = bare(digest_app(seen))
    with send_head(server.port, "PUT", "/x", {"Content-Length": str(8 * MIB)}) as sock:
        sock.sendall(os.urandom(2 * MIB))
        assert seen["called"].wait(5)
    deadline = time.monotonic() + 10
    while "error" not in seen and time.monotonic() < deadline:
        time.sleep(0.05)
    assert type(seen.get("error")).__name__ == "IncompleteBody"


def test_stalled_client_times_out(bare):
    seen = new_seen()
    server = bare(digest_app(seen), channel_timeout=1)
    with send_head(server.port, "PUT", "/x", {"Content-Length": str(2 * MIB)}) as sock:
        sock.sendall(b"x" * 1000)
        response = read_until_closed(sock)
    assert response.startswith(b"HTTP/1.1 408"), response
    assert b"connection: close" in response.lower()


def test_expect_continue_is_answered_when_the_app_reads(bare):
    seen = new_seen()
    server = bare(digest_app(seen))
    with send_head(server.port, "PUT", "/x", {"Content-Length": str(MIB), "Expect": "100-continue"}) as sock:
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"y" * MIB)
        response = read_response(sock)
    assert response.startswith(b"HTTP/1.1 200") and response.endswith(hashlib.sha256(b"y" * MIB).hexdigest().encode())


def test_app_that_refuses_without_reading_sends_no_continue_and_closes(bare):
    def refuse(environ: dict, start_response: Callable) -> list[bytes]:
        start_response("403 Forbidden", [("Content-Length", "2")])
        return [b"no"]

    server = bare(refuse)
    with send_head(server.port, "PUT", "/x", {"Content-Length": str(64 * MIB), "Expect": "100-continue"}) as sock:
        response = read_until_closed(sock)  # we never send the body: the server must not wait for it
    assert response.startswith(b"HTTP/1.1 403") and b"100 Continue" not in response
    assert b"connection: close" in response.lower()


def test_small_requests_find_a_thread_while_uploads_stall(bare):
    """Two threads: one may stream, a second large body is received whole first, a GET still runs."""
    seen = new_seen()
    server = bare(digest_app(seen), threads=2)
    stalled = [send_head(server.port, "PUT", "/x", {"Content-Length": str(4 * MIB)}) for _ in range(2)]
    for sock in stalled:
        sock.sendall(b"z" * MIB)
    assert seen["called"].wait(5)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /small HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        assert read_response(sock).startswith(b"HTTP/1.1 200")
    assert server.slots.active == 1
    for sock in stalled:
        sock.close()


# -- the Stowage app: uploads --------------------------------------------------------------------------
@pytest.fixture
def raw_server(stowage_factory, live_server_factory):
    app = stowage_factory(repositories=[RAW])
    return app, live_server_factory(app)


def _auth(app) -> dict[str, str]:
    return dict(app.admin)


def test_raw_put_streams_into_the_repository(raw_server):
    app, server = raw_server
    body = os.urandom(5 * MIB + 3)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("PUT", "/repository/raw/big.bin", body=body, headers=_auth(app))
    response = conn.getresponse()
    assert response.status == 201, response.read()
    response.read()
    first_socket = conn.sock
    # keep-alive: the next request on the same connection is parsed after a fully read streamed body
    conn.request("GET", "/repository/raw/big.bin", headers=_auth(app))
    response = conn.getresponse()
    assert response.status == 200 and response.read() == body
    assert conn.sock is first_socket
    conn.close()


def test_raw_chunked_put_is_stored_whole(raw_server):
    app, server = raw_server
    pieces = [os.urandom(700_000) for _ in range(5)]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("PUT", "/repository/raw/chunked.bin", body=iter(pieces), encode_chunked=True,
                 headers={**_auth(app), "Transfer-Encoding": "chunked"})
    response = conn.getresponse()
    assert response.status == 201, response.read()
    response.read()
    got = app.client.simulate_get("/repository/raw/chunked.bin", headers=app.admin)
    assert got.status_code == 200 and got.content == b"".join(pieces)


def test_slow_client_upload_is_stored(raw_server):
    app, server = raw_server
    body = os.urandom(2 * MIB)
    with send_head(server.port, "PUT", "/repository/raw/slow.bin",
              {**_auth(app), "Content-Length": str(len(body))}) as sock:
        for start in range(0, len(body), 256 * 1024):
            sock.sendall(body[start:start + 256 * 1024])
            time.sleep(0.1)
        assert read_response(sock).startswith(b"HTTP/1.1 201")
    assert app.client.simulate_get("/repository/raw/slow.bin", headers=app.admin).content == body


def test_upload_broken_off_mid_body_stores_nothing(raw_server):
    app, server = raw_server
    with send_head(server.port, "PUT", "/repository/raw/cut.bin",
              {**_auth(app), "Content-Length": str(16 * MIB)}) as sock:
        sock.sendall(os.urandom(3 * MIB))
        time.sleep(0.3)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        leftovers = list(app.stowage.settings.data_path.rglob("upload-*"))
        if not leftovers:
            break
        time.sleep(0.1)
    assert app.client.simulate_get("/repository/raw/cut.bin", headers=app.admin).status_code == 404
    assert not leftovers, leftovers  # the aborted writer removed its temporary file
    # and the server goes on serving
    assert app.client.simulate_get("/service/rest/v1/status").status_code == 200
    with send_head(server.port, "GET", "/service/rest/v1/status", {}) as sock:
        assert read_response(sock).startswith(b"HTTP/1.1 200")


def test_anonymous_large_put_without_expect_is_refused_and_closed(raw_server):
    app, server = raw_server
    with send_head(server.port, "PUT", "/repository/raw/anon.bin", {"Content-Length": str(32 * MIB)}) as sock:
        try:
            sock.sendall(b"a" * MIB)
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = read_until_closed(sock)
    assert response.startswith(b"HTTP/1.1 401") and b"connection: close" in response.lower(), response[:300]
    assert app.client.simulate_get("/repository/raw/anon.bin", headers=app.admin).status_code == 404


def test_shutdown_lets_a_streamed_upload_finish(stowage_factory):
    from stowage.testing.harness import LiveServer

    app = stowage_factory(repositories=[RAW])
    server = LiveServer(app).start()  # not the factory's: this one is meant to end by itself
    body = os.urandom(6 * MIB)
    with send_head(server.port, "PUT", "/repository/raw/drained.bin",
              {**_auth(app), "Content-Length": str(len(body))}) as sock:
        sock.sendall(body[:2 * MIB])
        time.sleep(0.2)
        server.server.shutdown()  # what SIGTERM does: stop accepting, finish what is in progress
        time.sleep(0.3)
        sock.sendall(body[2 * MIB:])
        assert read_response(sock).startswith(b"HTTP/1.1 201")
    assert app.client.simulate_get("/repository/raw/drained.bin", headers=app.admin).content == body
    server.thread.join(10)
    assert not server.thread.is_alive()  # and then the serving loop ended


def test_server_threads_bound_the_streams(stowage_factory):
    app = stowage_factory(repositories=[RAW])
    server = Server(app.app, app.stowage, host="127.0.0.1", port=0, threads=3)
    try:
        assert server.stream_slots.limit == 2
    finally:
        server.close()


# -- the chunked parser: the same answers as waitress's, fed the same bytes in any split ------------------
from hypothesis import given, settings, strategies as st  # noqa: E402

from waitress.buffers import OverflowableBuffer  # noqa: E402
from waitress.receiver import ChunkedReceiver  # noqa: E402

from stowage.streamed_body import StreamingChunkedReceiver  # noqa: E402


class Collect(list):
    def append(self, data: bytes) -> None:  # what BodyPipe.append does with it
        super().append(bytes(data))

    def __len__(self) -> int:
        return sum(len(x) for x in self)


def _feed(receiver, data: bytes, cuts: list[int]) -> list[int]:
    consumed, start = [], 0
    for cut in sorted(set(cuts)) + [len(data)]:
        piece = data[start:cut]
        start = cut
        while piece and not receiver.completed and not receiver.error:
            n = receiver.received(piece)
            consumed.append(n)
            if n == 0:
                break
            piece = piece[n:]
    return consumed


@st.composite
def chunked_bodies(draw):
    chunks = draw(st.lists(st.binary(min_size=1, max_size=300), max_size=6))
    out = b""
    for chunk in chunks:
        ext = draw(st.sampled_from([b"", b";a=b", b';name="q"', b";bad ext"]))
        size = draw(st.sampled_from([b"%x" % len(chunk), b"%X" % len(chunk), b"zz"]))
        end = draw(st.sampled_from([b"\r\n", b"\r\n", b"xx"]))
        out += size + ext + b"\r\n" + chunk + end
    out += b"0\r\n" + draw(st.sampled_from([b"\r\n", b"X-T: 1\r\n\r\n", b"X-T: 1\r\n"]))
    return out + draw(st.sampled_from([b"", b"GET / HTTP/1.1\r\n\r\n"]))


@settings(max_examples=300, deadline=None)
@given(chunked_bodies(), st.lists(st.integers(min_value=0, max_value=2000), max_size=8))
def test_streaming_chunked_receiver_agrees_with_waitress(data, cuts):
    cuts = [c for c in cuts if c < len(data)]
    ours, theirs = StreamingChunkedReceiver(Collect()), ChunkedReceiver(OverflowableBuffer(1 << 20))
    _feed(ours, data, cuts)
    _feed(theirs, data, cuts)
    assert bool(ours.error) == bool(theirs.error)
    if not theirs.error:
        assert ours.completed == theirs.completed
        assert b"".join(ours.buf) == theirs.buf.getfile().read()
        if theirs.completed:  # both stop at the same byte: what follows is the next request
            whole_ours, whole_theirs = StreamingChunkedReceiver(Collect()), ChunkedReceiver(OverflowableBuffer(1 << 20))
            assert whole_ours.received(data) == whole_theirs.received(data)
