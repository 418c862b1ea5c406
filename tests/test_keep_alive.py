"""A revalidation (304) keeps the connection open, like the GET it replaces (issue 16: a 304 must cost no
more than a hot GET; waitress alone closes after every answer without Content-Length)."""

from __future__ import annotations

import http.client
import socket
from typing import Iterator

import pytest

RAW = {"name": "raw", "format": "raw", "type": "hosted", "online": True,
       "storage": {"blobStoreName": "default", "strictContentTypeValidation": False, "writePolicy": "ALLOW"}}


def _get(conn: http.client.HTTPConnection, path: str, **headers: str) -> http.client.HTTPResponse:
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    response.read()
    return response


@pytest.fixture
def conn(stowage_factory, live_server_factory) -> Iterator[http.client.HTTPConnection]:
    """One keep-alive connection to a live server whose raw repository holds ``a.txt``."""
    app = stowage_factory(repositories=[RAW])
    assert app.client.simulate_put("/repository/raw/a.txt", body=b"abc", headers=app.admin).status_code == 201
    connection = http.client.HTTPConnection("127.0.0.1", live_server_factory(app).port, timeout=10)
    yield connection
    connection.close()


def test_a_304_keeps_the_connection_open(conn: http.client.HTTPConnection):
    first = _get(conn, "/repository/raw/a.txt")
    assert first.status == 200 and not first.will_close
    sock = conn.sock
    revalidated = _get(conn, "/repository/raw/a.txt", **{"If-None-Match": first.getheader("ETag")})
    assert revalidated.status == 304
    assert revalidated.getheader("Connection") is None and not revalidated.will_close
    again = _get(conn, "/repository/raw/a.txt")
    assert again.status == 200 and conn.sock is sock  # the same connection served all three


def test_a_client_that_asks_to_close_is_still_closed_after_a_304(conn: http.client.HTTPConnection):
    etag = _get(conn, "/repository/raw/a.txt").getheader("ETag")
    response = _get(conn, "/repository/raw/a.txt", **{"If-None-Match": etag, "Connection": "close"})
    assert response.status == 304 and response.getheader("Connection") == "close" and response.will_close


# --- the event loop is not woken after a response the worker thread sent whole (server.PlainHTTPChannel) ---

@pytest.fixture
def served(stowage_factory, live_server_factory):
    """A live server whose raw repository holds ``1.txt``..``3.txt`` and a 4 MiB ``big.bin``."""
    app = stowage_factory(repositories=[RAW])
    for name, body in [("1.txt", b"first-body"), ("2.txt", b"second-body"), ("3.txt", b"third-body"),
                       ("big.bin", BIG)]:
        assert app.client.simulate_put(f"/repository/raw/{name}", body=body, headers=app.admin).status_code == 201
    return live_server_factory(app)


BIG = bytes(range(256)) * (16 * 1024)


def _read_until_closed(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_keep_alive_gets_do_not_wake_the_event_loop(served):
    trigger = served.server.main.trigger
    pulls = []
    physical = trigger._physical_pull
    trigger._physical_pull = lambda: (pulls.append(1), physical())[1]
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
    try:
        for _ in range(20):
            response = _get(conn, "/repository/raw/1.txt")
            assert response.status == 200 and not response.will_close
    finally:
        conn.close()
        trigger._physical_pull = physical
    assert len(pulls) <= 2  # waitress alone: one wake-up per request


def test_pipelined_requests_are_answered_in_order(served):
    requests = b"".join(f"GET /repository/raw/{name} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()
                        for name, extra in [("1.txt", ""), ("2.txt", ""), ("3.txt", "Connection: close\r\n")])
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.sendall(requests)
        answer = _read_until_closed(sock)
    assert answer.count(b"HTTP/1.1 200 OK") == 3
    assert 0 < answer.index(b"first-body") < answer.index(b"second-body") < answer.index(b"third-body")


def test_a_client_that_half_closes_after_its_request_still_gets_a_large_answer(served):
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.sendall(b"GET /repository/raw/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)  # EOF while the request runs: the answer is still wanted
        answer = _read_until_closed(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and body == BIG


def test_a_small_answer_leaves_in_one_write_with_its_head(served, monkeypatch):
    """Head and body of a small GET are handed to the channel together: two writes cost two sends and a
    GIL hand-off around each (2 sendto per 4 KiB GET before). A HEAD and a large file keep their own path."""
    from waitress.channel import HTTPChannel

    writes: list[bytes] = []
    original = HTTPChannel.write_soon
    monkeypatch.setattr(HTTPChannel, "write_soon",
                        lambda self, data: (writes.append(data), original(self, data))[1])
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
    try:
        response = _get(conn, "/repository/raw/2.txt")
        assert response.status == 200
        assert len(writes) == 1 and writes[0].startswith(b"HTTP/1.1 200") and writes[0].endswith(b"second-body")
        writes.clear()
        conn.request("HEAD", "/repository/raw/2.txt")
        head = conn.getresponse()
        head.read()
        assert head.status == 200 and head.getheader("Content-Length") == str(len(b"second-body"))
        assert not any(b"second-body" in data for data in writes)
        writes.clear()
        assert _get(conn, "/repository/raw/big.bin").status == 200
        assert not writes[0].endswith(BIG[-64:])  # a file answer: the head goes alone, the file follows
    finally:
        conn.close()
