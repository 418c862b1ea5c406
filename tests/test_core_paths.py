"""Issue 2 acceptance: request paths never escape their repository (property test + real HTTP)."""

from __future__ import annotations

import posixpath
import socket
from urllib.parse import quote

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core_helpers import curl
from stowage.errors import InvalidPath
from stowage.http.paths import clean_path

# Pieces that make traversal likely: dots, separators, their percent-encodings (once and twice), NUL.
_PIECES = st.sampled_from(["/", ".", "..", "%2e", "%2E", "%2f", "%2F", "%5c", "\\", "%252e", "%252f", "%25",
                           "a", "b.txt", "%00", "\x00", "%c0%ae", "\u2024", "e\u0301", "//", "~", ":"])
_PATHS = st.lists(st.one_of(_PIECES, st.text(max_size=4)), max_size=12).map("".join)


@settings(max_examples=1500, deadline=None)
@given(_PATHS)
@example("../etc/passwd")
@example("%2e%2e/etc/passwd")
@example("a/%2e%2e%2f%2e%2e%2fetc")
@example("%252e%252e/x")
@example("a\\..\\b")
@example("/etc/passwd")
def test_clean_path_never_leaves_the_repository(raw):
    try:
        cleaned = clean_path(raw)
    except InvalidPath:
        return
    body = cleaned[:-1] if cleaned.endswith("/") else cleaned
    if not body:
        return
    segments = body.split("/")
    assert all(segment not in ("", ".", "..") for segment in segments), cleaned
    assert "\\" not in cleaned and not cleaned.startswith("/")
    assert all(ord(ch) >= 0x20 and ord(ch) != 0x7F for ch in cleaned)
    # canonical: normalising changes nothing, and the path stays below any root it is joined to
    assert posixpath.normpath(body) == body
    assert posixpath.normpath(posixpath.join("/root/repo", body)).startswith("/root/repo/")
    # idempotent on its own (re-encoded) output: one asset has one spelling
    assert clean_path(quote(cleaned, safe="/")) == cleaned


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\\%"),
               min_size=1, max_size=30).filter(lambda s: s not in (".", "..") and s.isprintable()))
def test_clean_path_accepts_ordinary_names(name):
    import unicodedata

    assert clean_path(quote(f"dir/{name}", safe="/")) == unicodedata.normalize("NFC", f"dir/{name}")


SECRET = "A-SECRET-CONTENT"
PUBLIC = "b-public-content"


@pytest.fixture
def server(stowage_app, live_server_factory):
    stowage_app.create_repository(name="repo-a", format="raw", type="hosted")
    stowage_app.create_repository(name="repo-b", format="raw", type="hosted")
    server = live_server_factory(stowage_app)
    auth = ("-u", f"admin:{stowage_app.admin_password}")
    for repo, path, body in (("repo-a", "secret.txt", SECRET), ("repo-a", "x/secret.txt", SECRET),
                             ("repo-b", "x/file.txt", PUBLIC)):
        assert curl(*auth, "-X", "PUT", "--data-binary", body, "-o", "/dev/null", "-w", "%{http_code}",
                    f"{server.url}/repository/{repo}/{path}").stdout == "201"
    return server


TRAVERSALS = [
    "/repository/repo-b/../repo-a/secret.txt",
    "/repository/repo-b/x/../../repo-a/secret.txt",
    "/repository/repo-b/%2e%2e/repo-a/secret.txt",
    "/repository/repo-b/%2E%2E/repo-a/secret.txt",
    "/repository/repo-b/x/%2e%2e%2f%2e%2e%2frepo-a%2fsecret.txt",
    "/repository/repo-b/..%2frepo-a%2fsecret.txt",
    "/repository/repo-b/%2e%2e%2frepo-a/secret.txt",
    "/repository/repo-b/..\\repo-a\\secret.txt",
    "/repository/repo-b/x\\..\\..\\repo-a\\secret.txt",
    "/repository/repo-b/%5c..%5crepo-a%5csecret.txt",
    "/repository/repo-b//repo-a/secret.txt",
    "/repository/repo-b/%2frepo-a%2fsecret.txt",
    "/repository/repo-b/%252e%252e/repo-a/secret.txt",
    "/repository/repo-b/%252e%252e%252frepo-a%252fsecret.txt",
    "/repository/repo-b/./x/file.txt",
    "/repository/repo-b/x/./file.txt",
    "/repository/repo-b/x/%00/file.txt",
    "/repository/..%2frepo-a/secret.txt",
    "/repository/%2e%2e/repository/repo-a/secret.txt",
    "/repository/repo-b%2f..%2frepo-a/secret.txt",
    "/repository/repo-b/%c0%ae%c0%ae/repo-a/secret.txt",
    "/repository/repo-b/../../../../../../etc/passwd",
    "/repository/repo-b/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/repository/repo-b//etc/passwd",
    "/repository/repo-b/%2fetc%2fpasswd",
    "/service/rest/repository/browse/repo-b/../repo-a/",
    "/service/rest/repository/browse/repo-b/%2e%2e/repo-a/",
    "/service/rest/repository/browse/repo-b/..%2f..%2f/",
]


def _raw_get(server, target: str) -> tuple[int, bytes]:
    """Send the request target byte for byte (no client-side normalisation at all)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize("target", TRAVERSALS)
def test_traversal_over_http_is_refused(server, target):
    status, body = _raw_get(server, target)
    assert SECRET.encode() not in body and b"root:" not in body
    assert status in (400, 404), (status, body[:200])
    # curl with --path-as-is sends the same bytes through a real client
    result = curl("--path-as-is", "-o", "-", "-w", "\n%{http_code}", f"{server.url}{target}", check=False)
    assert SECRET not in result.stdout and "root:" not in result.stdout
    assert result.stdout.rsplit("\n", 1)[-1] in ("400", "404")


def test_absolute_form_and_absolute_paths(server):
    status, body = _raw_get(server, f"http://127.0.0.1:{server.port}/repository/repo-b/../repo-a/secret.txt")
    assert status in (400, 404) and SECRET.encode() not in body
    status, body = _raw_get(server, f"http://127.0.0.1:{server.port}/repository/repo-b/x/file.txt")
    assert status == 200 and body == PUBLIC.encode()


def test_writes_cannot_traverse_either(server):
    auth = ("-u", f"admin:{server.test_stowage.admin_password}")
    for target in ("/repository/repo-b/../repo-a/evil.txt", "/repository/repo-b/%2e%2e/repo-a/evil.txt",
                   "/repository/repo-b/..%5crepo-a%5cevil.txt", "/repository/repo-b/%2fevil.txt"):
        result = curl(*auth, "--path-as-is", "-X", "PUT", "--data-binary", "evil", "-o", "/dev/null",
                      "-w", "%{http_code}", f"{server.url}{target}", check=False)
        assert result.stdout == "400", target
    stowage = server.stowage
    assert [a.path for a in stowage.catalog.iter_assets("repo-a")] == ["secret.txt", "x/secret.txt"]
    assert [a.path for a in stowage.catalog.iter_assets("repo-b")] == ["x/file.txt"]


def test_the_ordinary_path_still_works(server):
    assert curl(f"{server.url}/repository/repo-b/x/file.txt").stdout == PUBLIC
    assert curl(f"{server.url}/repository/repo-a/secret.txt").stdout == SECRET
