"""A yum proxy streams an RPM or repodata-file miss to the client while it downloads, through a group too."""

from __future__ import annotations

import hashlib
import os
import subprocess


def curl_timing(url: str) -> tuple[subprocess.CompletedProcess, float, float]:
    """(result, seconds to the first body byte, seconds in all)."""
    result = subprocess.run(["curl", "-sS", "-o", os.devnull, "-w", "%{http_code} %{time_starttransfer} %{time_total}",
                             url], capture_output=True, text=True, timeout=60)
    _status, first, total = result.stdout.split()
    return result, float(first), float(total)


def test_rpm_and_repodata_misses_stream(yum_app, live_server_factory, fault_upstream):
    body = os.urandom(3 * 1024 * 1024)  # bytes are bytes to the proxy cache; dnf never sees these
    primary = f"repodata/{hashlib.sha256(body).hexdigest()}-primary.xml.gz"
    for path in ("Packages/a/big-1.0-1.x86_64.rpm", primary):
        fault_upstream.put(path, body)
    ts = yum_app({"name": "yum-proxy", "format": "yum", "type": "proxy", "proxy": {"remoteUrl": fault_upstream.url}})
    server = live_server_factory(ts)
    fault_upstream.throttle(1.5 * 1024 * 1024)  # the remote needs about 2 s per file

    for path in ("Packages/a/big-1.0-1.x86_64.rpm", primary):
        result, first, total = curl_timing(f"{server.url}/repository/yum-proxy/{path}")
        assert result.stdout.startswith("200"), result
        assert total - first > 1.0, f"{path}: first byte after {first:.2f}s of {total:.2f}s: not streamed"
        cached = ts.stowage.catalog.get_asset("yum-proxy", path)
        assert cached is not None and cached.blob_sha256 == hashlib.sha256(body).hexdigest()
        assert fault_upstream.count(path) == 1

    fault_upstream.put("Packages/b/other-2.0-1.x86_64.rpm", body)
    result, first, total = curl_timing(f"{server.url}/repository/yum-group/Packages/b/other-2.0-1.x86_64.rpm")
    assert result.stdout.startswith("200"), result
    assert total - first > 1.0, f"group: first byte after {first:.2f}s of {total:.2f}s: not streamed"
