"""npm on the proxy engine: a tarball miss streams while it downloads (through a group too); requests passed
to the remote as they are (search, audit) follow the repository's httpClient retry setting."""

from __future__ import annotations

import hashlib
import json
import os

from stowage.testing import curl_first_byte


def test_a_tarball_miss_streams_through_proxy_and_group(stowage_factory, live_server_factory, fault_upstream):
    tarball = os.urandom(3 * 1024 * 1024)  # bytes are bytes to the proxy; npm itself never sees this one
    versions = {}
    for version in ("1.0.0", "1.1.0"):
        fault_upstream.put(f"streampkg/-/streampkg-{version}.tgz", tarball)
        versions[version] = {"name": "streampkg", "version": version, "dist": {
            "tarball": f"{fault_upstream.url}/streampkg/-/streampkg-{version}.tgz",
            "shasum": hashlib.sha1(tarball).hexdigest()}}
    fault_upstream.put("streampkg", json.dumps({"name": "streampkg", "versions": versions,
                                                "dist-tags": {"latest": "1.1.0"}}),
                       content_type="application/json")
    app = stowage_factory(repositories=[
        {"name": "npm-hosted", "format": "npm", "type": "hosted"},
        {"name": "npm-proxy", "format": "npm", "type": "proxy", "proxy": {"remoteUrl": fault_upstream.url}},
        {"name": "npm-group", "format": "npm", "type": "group", "group": {"memberNames": ["npm-hosted", "npm-proxy"]}},
    ])
    server = live_server_factory(app)
    fault_upstream.throttle(1.5 * 1024 * 1024)  # the remote needs about 2 s per tarball

    for repository, version in (("npm-proxy", "1.0.0"), ("npm-group", "1.1.0")):
        url = f"{server.url}/repository/{repository}/streampkg/-/streampkg-{version}.tgz"
        status, first, total = curl_first_byte(url)
        assert status == "200"
        assert total - first > 1.0, f"{repository}: first byte after {first:.2f}s of {total:.2f}s: not streamed"
        cached = app.stowage.catalog.get_asset("npm-proxy", f"streampkg/-/streampkg-{version}.tgz")
        assert cached is not None and cached.blob_sha256 == hashlib.sha256(tarball).hexdigest()
        assert fault_upstream.count(f"streampkg/-/streampkg-{version}.tgz") == 1


def test_search_and_audit_passthrough_follow_the_retry_setting(stowage_factory, live_server_factory, fault_upstream):
    """httpClient.connection.retries (default 0) holds for requests passed to the remote as they are."""
    import urllib3

    app = stowage_factory(repositories=[
        {"name": "once", "format": "npm", "type": "proxy", "proxy": {"remoteUrl": fault_upstream.url}},
        {"name": "twice", "format": "npm", "type": "proxy", "proxy": {"remoteUrl": fault_upstream.url},
         "httpClient": {"connection": {"retries": 1}}},
    ])
    server = live_server_factory(app)
    fault_upstream.put("-/v1/search", b"{}", content_type="application/json")
    fault_upstream.fault("status", "-/v1/search", status=503)
    for name, attempts in (("once", 1), ("twice", 2)):
        fault_upstream.clear_log()
        answer = urllib3.request("GET", f"{server.url}/repository/{name}/-/v1/search?text=x")
        assert answer.status == 200 and json.loads(answer.data)["objects"] == []  # a failing remote hides nothing
        assert len([r for r in fault_upstream.log if r.path.startswith("-/v1/search")]) == attempts


def _sri(data: bytes) -> str:
    import base64

    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def test_a_tarball_that_differs_from_its_packument_is_never_cached_nor_served_whole(
        stowage_factory, live_server_factory, fault_upstream, tmp_path):
    """The remote's packument lists the tarball's digest (integrity, else shasum); a body that differs is cut
    off mid-stream (never a complete 200) and not cached, so the next request asks the remote again."""
    import subprocess

    listed = os.urandom(1024 * 1024)
    swapped = os.urandom(len(listed))  # same size: only the digest tells them apart
    dists = {"1.0.0": {"integrity": _sri(listed)}, "2.0.0": {"shasum": hashlib.sha1(listed).hexdigest()}}
    versions = {}
    for version, dist in dists.items():
        fault_upstream.put(f"swapped/-/swapped-{version}.tgz", swapped)
        versions[version] = {"name": "swapped", "version": version, "dist": {
            "tarball": f"{fault_upstream.url}/swapped/-/swapped-{version}.tgz", **dist}}
    fault_upstream.put("swapped", json.dumps({"name": "swapped", "versions": versions,
                                              "dist-tags": {"latest": "2.0.0"}}), content_type="application/json")
    app = stowage_factory(repositories=[
        {"name": "npm-proxy", "format": "npm", "type": "proxy", "proxy": {"remoteUrl": fault_upstream.url}}])
    server = live_server_factory(app)

    for version in dists:
        path = f"swapped/-/swapped-{version}.tgz"
        out = tmp_path / f"{version}.tgz"
        for attempt in (1, 2):
            result = subprocess.run(["curl", "-sS", "-o", str(out), "-w", "%{http_code}",
                                     f"{server.url}/repository/npm-proxy/{path}"], capture_output=True, text=True)
            got = out.read_bytes() if out.exists() else b""
            assert result.returncode != 0 or result.stdout != "200" or len(got) < len(swapped), \
                f"{version}: a body that differs from the packument was served whole"
            assert result.stdout in ("200", "502"), f"{version}: the remote's fault, not the client's: {result}"
            assert got != swapped
            assert app.stowage.catalog.get_asset("npm-proxy", path) is None
            assert fault_upstream.count(path) == attempt  # nothing cached: the remote is asked again

    # Once the remote serves the listed bytes, they are cached.
    fault_upstream.put("swapped/-/swapped-1.0.0.tgz", listed)
    status, _, _ = curl_first_byte(f"{server.url}/repository/npm-proxy/swapped/-/swapped-1.0.0.tgz")
    assert status == "200"
    cached = app.stowage.catalog.get_asset("npm-proxy", "swapped/-/swapped-1.0.0.tgz")
    assert cached is not None and cached.blob_sha256 == hashlib.sha256(listed).hexdigest()
