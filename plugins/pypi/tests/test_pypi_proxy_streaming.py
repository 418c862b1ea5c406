"""A pypi proxy streams a file miss to the client while it downloads, and caches only what the remote's
project page promised (its sha256), checked while streaming."""

from __future__ import annotations

import hashlib
import os
import subprocess

import urllib3

from stowage.testing import curl_first_byte


def test_a_file_miss_streams_and_a_wrong_digest_is_never_cached(stowage_factory, live_server_factory,
                                                                fault_upstream):
    good, bad = os.urandom(3 * 1024 * 1024), os.urandom(64 * 1024)
    fault_upstream.put("files/streampkg-1.0.tar.gz", good)
    fault_upstream.put("files/streampkg-1.1.tar.gz", bad)
    listed_for_bad = hashlib.sha256(b"what the page promised").hexdigest()
    fault_upstream.put("simple/streampkg/", (
        "<html><body>"
        f'<a href="../../files/streampkg-1.0.tar.gz#sha256={hashlib.sha256(good).hexdigest()}">streampkg-1.0.tar.gz</a>'
        f'<a href="../../files/streampkg-1.1.tar.gz#sha256={listed_for_bad}">streampkg-1.1.tar.gz</a>'
        "</body></html>"), content_type="text/html")
    app = stowage_factory()
    app.create_repository(name="pypi-proxy", format="pypi", type="proxy",
                          proxy={"remoteUrl": f"{fault_upstream.url}/simple/"}, httpClient={"autoBlock": False})
    server = live_server_factory(app)
    base = f"{server.url}/repository/pypi-proxy"
    assert urllib3.request("GET", f"{base}/simple/streampkg/").status == 200

    fault_upstream.throttle(1.5 * 1024 * 1024)  # the remote needs about 2 s for the 3 MiB file
    status, first, total = curl_first_byte(f"{base}/packages/streampkg/1.0/streampkg-1.0.tar.gz")
    assert status == "200"
    assert total - first > 1.0, f"first byte after {first:.2f}s of {total:.2f}s: the miss was not streamed"
    cached = app.stowage.catalog.get_asset("pypi-proxy", "packages/streampkg/1.0/streampkg-1.0.tar.gz")
    assert cached is not None and cached.blob_sha256 == hashlib.sha256(good).hexdigest()
    assert fault_upstream.count("files/streampkg-1.0.tar.gz") == 1

    fault_upstream.throttle(None)
    result = subprocess.run(["curl", "-sS", "-o", os.devnull, "-w", "%{http_code}",
                             f"{base}/packages/streampkg/1.1/streampkg-1.1.tar.gz"], capture_output=True, text=True)
    assert result.returncode != 0 or result.stdout != "200", \
        "a body with the wrong digest must not reach the client as a complete download"
    assert app.stowage.catalog.get_asset("pypi-proxy", "packages/streampkg/1.1/streampkg-1.1.tar.gz") is None


def test_head_of_an_uncached_file_has_the_exact_length_from_a_chunked_remote(stowage_factory, live_server_factory,
                                                                             fault_upstream):
    good, bad = os.urandom(512 * 1024 + 3), os.urandom(64 * 1024)
    fault_upstream.put("files/headpkg-1.0.tar.gz", good)
    fault_upstream.put("files/headpkg-1.1.tar.gz", bad)
    fault_upstream.put("simple/headpkg/", (
        "<html><body>"
        f'<a href="../../files/headpkg-1.0.tar.gz#sha256={hashlib.sha256(good).hexdigest()}">headpkg-1.0.tar.gz</a>'
        f'<a href="../../files/headpkg-1.1.tar.gz#sha256={hashlib.sha256(good).hexdigest()}">headpkg-1.1.tar.gz</a>'
        "</body></html>"), content_type="text/html")
    fault_upstream.chunked()  # no Content-Length from the remote: the size is known only at the end
    app = stowage_factory()
    app.create_repository(name="pypi-proxy", format="pypi", type="proxy",
                          proxy={"remoteUrl": f"{fault_upstream.url}/simple/"}, httpClient={"autoBlock": False})
    server = live_server_factory(app)
    base = f"{server.url}/repository/pypi-proxy"

    def head(url: str) -> tuple[str, dict[str, str]]:
        lines = subprocess.run(["curl", "-sS", "-I", url], capture_output=True, text=True).stdout.splitlines()
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        return lines[0].strip(), {name.lower(): value.strip() for name, value in headers.items()}

    status, headers = head(f"{base}/packages/headpkg/1.0/headpkg-1.0.tar.gz")
    assert status.endswith("200 OK") and headers["content-length"] == str(len(good))
    cached = app.stowage.catalog.get_asset("pypi-proxy", "packages/headpkg/1.0/headpkg-1.0.tar.gz")
    assert cached is not None and cached.blob_sha256 == hashlib.sha256(good).hexdigest()

    # A body whose sha256 is not what the page lists: HEAD does not answer 200 for it either.
    status, _ = head(f"{base}/packages/headpkg/1.1/headpkg-1.1.tar.gz")
    assert status.split()[1].startswith("5"), status
    assert app.stowage.catalog.get_asset("pypi-proxy", "packages/headpkg/1.1/headpkg-1.1.tar.gz") is None
