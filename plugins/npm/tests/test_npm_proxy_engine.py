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
