"""A yum proxy checks a proxied RPM against the checksum the cached upstream primary.xml lists for it."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import urllib3


def _get(url: str, out: Path) -> tuple[int, str, bytes]:
    result = subprocess.run(["curl", "-sS", "-o", str(out), "-w", "%{http_code}", url], capture_output=True, text=True)
    return result.returncode, result.stdout, out.read_bytes() if out.exists() else b""


def _proxy_with_swapped_lib(yum_app, rpms, yum_upstream, live_server_factory, checksum: str):
    """A proxy that has cached repomd.xml and primary (what dnf reads first); then the remote starts
    serving world's bytes under lib's name (same location, the listed checksum no longer matches)."""
    upstream = yum_upstream([rpms["lib-3.0"], rpms["world-2.0"]], "9/os", checksum=checksum)
    ts = yum_app({"name": "yum-proxy", "format": "yum", "type": "proxy", "proxy": {"remoteUrl": upstream.url}})
    server = live_server_factory(ts)
    base = f"{server.url}/repository/yum-proxy/9/os"
    repomd = urllib3.request("GET", f"{base}/repodata/repomd.xml")
    assert repomd.status == 200
    primary = re.search(rb'<data type="primary">.*?<location href="([^"]+)"', repomd.data, re.S).group(1).decode()
    assert urllib3.request("GET", f"{base}/{primary}").status == 200
    served = Path(upstream.server.RequestHandlerClass.keywords["directory"]) / "9/os/Packages" / rpms["lib-3.0"].name
    shutil.copy(rpms["world-2.0"], served)
    return ts, server


def test_an_rpm_that_differs_from_primary_xml_is_never_cached_nor_served_whole(yum_app, rpms, yum_upstream,
                                                                               live_server_factory, tmp_path):
    ts, server = _proxy_with_swapped_lib(yum_app, rpms, yum_upstream, live_server_factory, "sha256")
    path = f"9/os/Packages/{rpms['lib-3.0'].name}"
    for attempt in (1, 2):
        code, status, body = _get(f"{server.url}/repository/yum-proxy/{path}", tmp_path / "lib.rpm")
        assert code != 0 or status != "200", f"attempt {attempt}: an RPM that differs from primary.xml was served whole"
        assert body != rpms["world-2.0"].read_bytes()
        assert ts.stowage.catalog.get_asset("yum-proxy", path) is None

    # An RPM that matches its listed checksum is cached as before.
    world = f"9/os/Packages/{rpms['world-2.0'].name}"
    code, status, body = _get(f"{server.url}/repository/yum-proxy/{world}", tmp_path / "world.rpm")
    assert (code, status) == (0, "200") and body == rpms["world-2.0"].read_bytes()
    cached = ts.stowage.catalog.get_asset("yum-proxy", world)
    assert cached is not None and cached.blob_sha256 == hashlib.sha256(body).hexdigest()


def test_a_sha1_listed_checksum_is_not_checked(yum_app, rpms, yum_upstream, live_server_factory, tmp_path):
    """Only sha256/sha512 are trusted as a reference; an older repository's sha1 gives no opinion."""
    ts, server = _proxy_with_swapped_lib(yum_app, rpms, yum_upstream, live_server_factory, "sha1")
    path = f"9/os/Packages/{rpms['lib-3.0'].name}"
    code, status, body = _get(f"{server.url}/repository/yum-proxy/{path}", tmp_path / "lib.rpm")
    assert (code, status) == (0, "200") and body == rpms["world-2.0"].read_bytes()
    assert ts.stowage.catalog.get_asset("yum-proxy", path) is not None
