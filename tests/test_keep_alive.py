"""A revalidation (304) keeps the connection open, like the GET it replaces (issue 16: a 304 must cost no
more than a hot GET; waitress alone closes after every answer without Content-Length)."""

from __future__ import annotations

import http.client
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
