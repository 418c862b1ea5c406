"""An unauthenticated upload that waits for ``100 Continue`` is refused on its head, its body never read."""

from __future__ import annotations

import socket

from stowage.testing.harness import basic_auth

from core_helpers import read_until_closed, send_head

RAW = {"name": "raw", "format": "raw", "type": "hosted", "online": True,
       "storage": {"blobStoreName": "default", "strictContentTypeValidation": False, "writePolicy": "ALLOW"}}
GIB = 1024**3


def test_anonymous_expect_continue_put_is_refused_before_the_body(stowage_factory, live_server_factory):
    app = stowage_factory(repositories=[RAW])
    server = live_server_factory(app)
    sock = send_head(server.port, "PUT", "/repository/raw/big.bin",
                 {"Content-Length": str(GIB), "Expect": "100-continue"})
    with sock:
        # The body is never sent: a server that answered 100 (or waited for the body) fails here.
        response = read_until_closed(sock)
    head = response.split(b"\r\n\r\n", 1)[0].decode()
    assert head.startswith("HTTP/1.1 401"), head
    assert "100 Continue" not in head
    assert "www-authenticate: basic" in head.lower()
    assert "connection: close" in head.lower()
    assert app.client.simulate_get("/repository/raw/big.bin", headers=app.admin).status_code == 404


def test_refused_upload_is_audited_like_any_refusal(stowage_factory, live_server_factory):
    app = stowage_factory(repositories=[RAW])
    server = live_server_factory(app)
    with send_head(server.port, "PUT", "/repository/raw/x.bin", {"Content-Length": "5", "Expect": "100-continue"}) as sock:
        assert read_until_closed(sock).startswith(b"HTTP/1.1 401")
    events = app.client.simulate_get("/service/rest/v1/audit", params={"repository": "raw"}, headers=app.admin)
    assert events.status_code == 200
    assert [(e["action"], e["result"]) for e in events.json["items"]] == [("content.upload", "denied")]


def test_body_sent_anyway_after_the_refusal_is_not_parsed_as_a_request(stowage_factory, live_server_factory):
    app = stowage_factory(repositories=[RAW])
    server = live_server_factory(app)
    body = b"GET /repository/raw/ HTTP/1.1\r\nHost: x\r\n\r\n" * 4  # a body that looks like requests
    with send_head(server.port, "PUT", "/repository/raw/y.bin",
               {"Content-Length": str(len(body)), "Expect": "100-continue"}) as sock:
        sock.sendall(body)  # clients that stop waiting for 100 send the body regardless
        response = read_until_closed(sock)
    # At most the one 401 (a reset may overtake it on loopback); never an answer to the "requests" in the body.
    assert response.count(b"HTTP/1.1 ") <= 1 and (not response or response.startswith(b"HTTP/1.1 401")), response


def test_body_in_the_same_packet_as_the_head_is_not_parsed_as_a_request(stowage_factory, live_server_factory):
    app = stowage_factory(repositories=[RAW])
    server = live_server_factory(app)
    body = b"GET /repository/raw/ HTTP/1.1\r\nHost: x\r\n\r\n" * 4
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    with sock:
        sock.sendall(b"PUT /repository/raw/w.bin HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body)  # one send: one segment on loopback
        response = read_until_closed(sock)
    assert response.startswith(b"HTTP/1.1 401") and response.count(b"HTTP/1.1 ") == 1, response


def test_authenticated_expect_continue_put_gets_100_and_is_stored(stowage_factory, live_server_factory):
    app = stowage_factory(repositories=[RAW])
    server = live_server_factory(app)
    body = b"hello world" * 1000
    with send_head(server.port, "PUT", "/repository/raw/ok.bin",
               {"Content-Length": str(len(body)), "Expect": "100-continue", **basic_auth(),
                "Connection": "close"}) as sock:
        interim = sock.recv(1024)
        assert interim.startswith(b"HTTP/1.1 100 Continue"), interim
        sock.sendall(body)
        final = read_until_closed(sock)
    assert final.split(b"\r\n", 1)[0] in (b"HTTP/1.1 201 Created", b"HTTP/1.1 200 OK", b"HTTP/1.1 204 No Content")
    assert app.client.simulate_get("/repository/raw/ok.bin", headers=app.admin).content == body


def test_wrong_password_takes_the_ordinary_path(stowage_factory, live_server_factory):
    """Only what is certain from the head is refused early: bad credentials are checked as always."""
    app = stowage_factory(repositories=[RAW])
    server = live_server_factory(app)
    with send_head(server.port, "PUT", "/repository/raw/z.bin",
               {"Content-Length": "3", "Expect": "100-continue", **basic_auth("admin", "wrong")}) as sock:
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"abc")
        assert sock.recv(65536).startswith(b"HTTP/1.1 401")


def test_rest_call_with_anonymous_access_off_is_refused_before_the_body(stowage_factory, live_server_factory):
    app = stowage_factory(repositories=[RAW])
    assert app.client.simulate_put("/service/rest/v1/security/anonymous", headers=app.admin,
                                   json={"enabled": False, "userId": "anonymous", "realmName": "NexusAuthorizingRealm"}
                                   ).status_code == 200
    server = live_server_factory(app)
    with send_head(server.port, "POST", "/service/rest/v1/components?repository=raw",
               {"Content-Length": str(GIB), "Content-Type": "multipart/form-data; boundary=x",
                "Expect": "100-continue"}) as sock:
        response = read_until_closed(sock)
    assert response.startswith(b"HTTP/1.1 401"), response[:200]
