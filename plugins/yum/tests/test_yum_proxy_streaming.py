"""A yum proxy streams an RPM or repodata-file miss to the client while it downloads, through a group too."""

from __future__ import annotations

import hashlib
import os

from stowage.testing import curl_first_byte


def test_rpm_and_repodata_misses_stream(yum_app, live_server_factory, fault_upstream):
    body = os.urandom(3 * 1024 * 1024)  # bytes are bytes to the proxy cache; dnf never sees these
    primary = f"repodata/{hashlib.sha256(body).hexdigest()}-primary.xml.gz"
    for path in ("Packages/a/big-1.0-1.x86_64.rpm", primary):
        fault_upstream.put(path, body)
    ts = yum_app({"name": "yum-proxy", "format": "yum", "type": "proxy", "proxy": {"remoteUrl": fault_upstream.url}})
    server = live_server_factory(ts)
    fault_upstream.throttle(1.5 * 1024 * 1024)  # the remote needs about 2 s per file

    for path in ("Packages/a/big-1.0-1.x86_64.rpm", primary):
        status, first, total = curl_first_byte(f"{server.url}/repository/yum-proxy/{path}")
        assert status == "200"
        assert total - first > 1.0, f"{path}: first byte after {first:.2f}s of {total:.2f}s: not streamed"
        cached = ts.stowage.catalog.get_asset("yum-proxy", path)
        assert cached is not None and cached.blob_sha256 == hashlib.sha256(body).hexdigest()
        assert fault_upstream.count(path) == 1

    fault_upstream.put("Packages/b/other-2.0-1.x86_64.rpm", body)
    status, first, total = curl_first_byte(f"{server.url}/repository/yum-group/Packages/b/other-2.0-1.x86_64.rpm")
    assert status == "200"
    assert total - first > 1.0, f"group: first byte after {first:.2f}s of {total:.2f}s: not streamed"
