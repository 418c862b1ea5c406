"""Issue 10 item 9: the inputs the attack run answered with a 500 are each a clear 400 now."""

from __future__ import annotations

import base64

import pytest

V1 = "/service/rest/v1"


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.fixture
def app(stowage_factory):
    return stowage_factory(repositories=[dict(name=f"{fmt}-h", format=fmt, type="hosted")
                                         for fmt in ("raw", "pypi", "npm", "yum")])


TOKENS = ["e30", b64("9" * 30), b64("[1]"), b64('["a", 1e999]'), b64("1e5"), b64("-1"), b64("[[],[]]"),
          b64("[\"a\", true]"), b64("[" * 3000 + "]" * 3000), "!!!", "%ff", b64("\udcff".encode("utf-8", "surrogatepass")
                                                                          .decode("latin-1"))]
LISTINGS = [f"{V1}/components?repository=raw-h", f"{V1}/assets?repository=raw-h", f"{V1}/search?q=x",
            f"{V1}/search?sort=name", f"{V1}/search?sort=version&direction=desc", f"{V1}/search/assets?q=x"]


def test_a_bad_continuation_token_is_400(app):
    for listing in LISTINGS:
        for token in TOKENS:
            r = app.client.simulate_get(f"{listing}&continuationToken={token}",
                                        headers={**app.admin, "Accept": "application/json"})
            if "/assets?" in listing and r.status_code == 200:
                continue  # an asset listing resumes after a path, and any text that decodes is a path
            assert r.status_code == 400, (listing, token, r.text)
            assert "invalid continuationToken" in r.json["message"]


def test_ui_pages_never_fail_on_a_bad_page_parameter(app):
    app.client.simulate_put("/repository/raw-h/dir/file.txt", body=b"x", headers=app.admin)
    for path in ["/", "/search?q=x", "/search?q=x&view=assets", "/service/rest/repository/browse/raw-h/", "/service/rest/repository/browse/raw-h/dir/",
                 "/service/rest/repository/browse/raw-h/?view=components",
                 "/service/rest/repository/browse/raw-h/?view=e30"]:
        for page in ["e30", "-1", "9" * 30, "%ff", b64("9" * 30), b64('["a", 1e999]')]:
            r = app.client.simulate_get(f"{path}{'&' if '?' in path else '?'}page={page}", headers=app.admin)
            assert r.status_code < 500, (path, page, r.text)


DEEP = "[" * 5000 + "]" * 5000


@pytest.mark.parametrize("method, path", [("POST", f"{V1}/repositories/raw/hosted"), ("POST", f"{V1}/security/users"),
                                          ("POST", f"{V1}/security/roles"), ("PUT", f"{V1}/security/anonymous"),
                                          ("PUT", "/repository/npm-h/pkg"),
                                          ("PUT", "/repository/npm-h/-/user/org.couchdb.user:x")])
def test_a_5000_level_json_body_is_400(app, method, path):
    r = app.client.simulate_request(method, path, body=DEEP,
                                    headers={**app.admin, "Content-Type": "application/json", "Accept": "application/json"})
    assert r.status_code == 400, r.text


def multipart(*parts: bytes) -> dict:
    body = b"".join(b"--XB\r\nContent-Disposition: form-data; " + part + b"\r\n" for part in parts) + b"--XB--\r\n"
    return {"body": body, "content_type": "multipart/form-data; boundary=XB"}


BAD_PARTS = {
    "filename": (b'name="raw.directory"\r\n\r\n/d', b'name="raw.asset1"; filename="\xff\xfe.txt"\r\n\r\nhello'),
    "field name": (b'name="\xff\xfe"\r\n\r\n/d',),
    "field value": (b'name="raw.directory"\r\n\r\n\xff\xfe', b'name="raw.asset1"; filename="a.txt"\r\n\r\nhello'),
}


@pytest.mark.parametrize("case", sorted(BAD_PARTS))
@pytest.mark.parametrize("url", [f"{V1}/components?repository=raw-h", f"{V1}/components?repository=pypi-h",
                                 f"{V1}/components?repository=npm-h", f"{V1}/components?repository=yum-h",
                                 "/repository/pypi-h/"])
def test_non_utf8_multipart_headers_and_fields_are_400(app, case, url):
    parts = BAD_PARTS[case]
    if url.startswith("/repository/pypi"):
        parts = (b'name=":action"\r\n\r\nfile_upload',) + tuple(p.replace(b"raw.asset1", b"content") for p in parts)
    before = app.stored_state()
    r = app.client.simulate_post(url, headers=app.admin, **multipart(*parts))
    assert 400 <= r.status_code < 500, r.text
    assert {k: v for k, v in app.stored_state().items() if k in ("assets", "components")} == \
        {k: v for k, v in before.items() if k in ("assets", "components")}


def raw_request(server, request: bytes) -> tuple[int, bytes]:
    import socket

    answer = b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection:
        try:
            connection.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered (and closed) before reading it all: its answer is still there to read
        try:
            while chunk := connection.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    assert answer, "the server closed the connection without an answer"
    status_line = answer.split(b"\r\n", 1)[0]
    return int(status_line.split()[1]), answer


@pytest.mark.parametrize("target", [
    b"/repository/raw-h/\xff\xfe.txt", b"/service/rest/v1/repositories/\xff", b"/repository/\xc3(/x",
    b"/repository/raw-h/" + b"a" * 60_000, b"/service/rest/v1/search?q=" + b"%ff" * 20_000,
    b"/repository/raw-h/%00/x", b"/v2/\xff/manifests/v1", b"/service/rest/repository/browse/raw-h/\xff/",
    b"/?page=\xff", b"/search?q=\xff\xfe"])
@pytest.mark.parametrize("method", [b"GET", b"PUT"])
def test_raw_bytes_and_long_request_targets_over_a_real_socket(app, live_server_factory, target, method):
    server = live_server_factory(app)
    auth = base64.b64encode(f"admin:{app.admin_password}".encode())
    status, answer = raw_request(server, method + b" " + target + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Basic "
                                 + auth + b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
    assert 400 <= status < 500 or status in (200, 201, 404), answer[:300]


def test_over_long_and_non_ascii_headers_over_a_real_socket(app, live_server_factory):
    server = live_server_factory(app)
    for header in [b"X-Long: " + b"a" * 300_000, b"Authorization: Basic " + b"A" * 100_000,
                   b"Authorization: Basic \xff\xfe", b"Authorization: Bearer \xff", b"Accept: \xff\xfe",
                   b"X-Forwarded-Host: \xff", b"Cookie: " + b"a=b; " * 20_000, b"Range: bytes=\xff-"]:
        status, answer = raw_request(server, b"GET /repository/raw-h/x HTTP/1.1\r\nHost: x\r\n" + header
                                     + b"\r\nConnection: close\r\n\r\n")
        assert 400 <= status < 500, (header[:40], answer[:300])


def test_multipart_without_a_length_is_411_and_chunked_through_waitress_works(app, live_server_factory):
    for url in (f"{V1}/components?repository=raw-h", "/repository/pypi-h/"):
        r = app.client.simulate_post(url, headers={**app.admin, "Content-Type": "multipart/form-data; boundary=XB"})
        assert r.status_code == 411 and "Content-Length" in r.text, r.text
    server = live_server_factory(app)  # waitress reads a chunked body whole and passes its length on
    auth = base64.b64encode(f"admin:{app.admin_password}".encode())
    part = (b'--XB\r\nContent-Disposition: form-data; name="raw.directory"\r\n\r\n/d\r\n--XB\r\nContent-Disposition: '
            b'form-data; name="raw.asset1"; filename="a.txt"\r\n\r\nhello\r\n--XB--\r\n')
    status, answer = raw_request(server, b"POST /service/rest/v1/components?repository=raw-h HTTP/1.1\r\nHost: x\r\n"
                                 b"Authorization: Basic " + auth + b"\r\nContent-Type: multipart/form-data; boundary=XB"
                                 b"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                                 + f"{len(part):x}\r\n".encode() + part + b"\r\n0\r\n\r\n")
    assert status == 204, answer[:400]
    assert app.stowage.catalog.get_asset("raw-h", "d/a.txt") is not None
