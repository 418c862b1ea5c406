"""End to end with real clients: curl uploads, dnf reads hosted, proxy and group repositories.

The proxy's upstream is a real yum repository on loopback: a directory indexed by the createrepo_c
command, served by an HTTP server thread.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from stowage.testing import ADMIN_PASSWORD
from stowage_yum.regeneration import pending_roots

TOOLS = ("dnf", "curl", "createrepo_c")


@pytest.fixture(scope="module", autouse=True)
def _tools() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"missing {missing}: install the Debian packages in .ci/apt-packages.txt")


@pytest.fixture
def upstream(rpms, yum_upstream):
    """``<url>/9/os/x86_64/`` is a createrepo_c repository holding lib-3.0 (and world-2.0)."""
    return yum_upstream([rpms["lib-3.0"], rpms["world-2.0"]], "9/os/x86_64")


def dnf(tmp_path: Path, baseurl: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """dnf isolated from the machine: its own install root, cache, no system repo files."""
    command = ["dnf", "--quiet", "--assumeyes", f"--installroot={tmp_path / 'installroot'}", "--releasever=9",
               "--setopt=reposdir=/nonexistent", f"--setopt=cachedir={tmp_path / 'dnf-cache'}",
               "--setopt=keepcache=0", f"--repofrompath=stowage,{baseurl}", "--repo=stowage",
               "--setopt=stowage.gpgcheck=0", "--setopt=stowage.metadata_expire=0",
               "--setopt=stowage.username=admin", f"--setopt=stowage.password={ADMIN_PASSWORD}", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def available(tmp_path: Path, baseurl: str) -> list[str]:
    shutil.rmtree(tmp_path / "dnf-cache", ignore_errors=True)
    output = dnf(tmp_path, baseurl, "repoquery", "--queryformat", "%{name}-%{version}-%{release}.%{arch}\n").stdout
    return sorted(line for line in output.split() if line)


def curl_upload(server_url: str, repo: str, path: Path, target: str) -> subprocess.CompletedProcess:
    # curl sends "Expect: 100-continue" for uploads; a server that does not answer it stalls each upload
    # for the expect timeout (raised to 60 s here so that a stall stands far above any load's noise).
    return subprocess.run(["curl", "-sS", "-w", "%{http_code}", "-o", "/dev/stderr", "-u", f"admin:{ADMIN_PASSWORD}",
                           "--expect100-timeout", "60",
                           "--upload-file", str(path), f"{server_url}/repository/{repo}/{target}"],
                          capture_output=True, text=True, timeout=120)


def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def http_get(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"Authorization": "Basic " + __import__("base64").b64encode(
        f"admin:{ADMIN_PASSWORD}".encode()).decode()})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read()


def test_acceptance_hosted_and_group_with_dnf(yum_app, live_server_factory, rpms, tmp_path, upstream):
    """The issue's acceptance lines, with anonymous access off (dnf sends credentials pre-emptively)."""
    ts = yum_app({"name": "yum-proxy", "format": "yum", "type": "proxy",
                  "proxy": {"remoteUrl": f"{upstream.url}/9/os/x86_64/", "metadataMaxAge": 0}},
                 delay=0.5, anonymous_access=False)
    server = live_server_factory(ts)
    group = f"{server.url}/repository/yum-group/"
    for key in ("hello-1.0", "hello-1.1", "world-2.0"):
        started = time.monotonic()
        result = curl_upload(server.url, "yum-hosted", rpms[key], rpms[key].name)
        assert result.stdout == "201", result.stderr
        assert time.monotonic() - started < 30  # Expect: 100-continue answered, no 60 s stall
    text = tmp_path / "x.rpm"
    text.write_text("not an rpm\n")
    repomd_before = None

    def hosted_lists_three() -> bool:
        nonlocal repomd_before
        repomd_before = http_get(f"{server.url}/repository/yum-hosted/repodata/repomd.xml")
        return b"hello-1.1" in _primary(server.url, "yum-hosted", repomd_before)

    wait_for(hosted_lists_three)
    assert curl_upload(server.url, "yum-hosted", text, "x.rpm").stdout == "400"
    # The refused upload requested no regeneration (so none can change repomd.xml later).
    assert pending_roots(ts.stowage.repository("yum-hosted")) == set()
    assert http_get(f"{server.url}/repository/yum-hosted/repodata/repomd.xml") == repomd_before

    # The group lists the packages of every member: hosted ones and the proxy's upstream ones.
    assert available(tmp_path, group) == ["hello-1.0-1.noarch", "hello-1.1-1.noarch", "lib-3.0-1.noarch",
                                          "world-2.0-1.noarch"]
    # dnf downloads hello 1.1 through the group; its checksum is the one primary.xml lists.
    dnf(tmp_path, group, "download", f"--destdir={tmp_path / 'dl'}", "hello-1.1")
    downloaded = (tmp_path / "dl" / "hello-1.1-1.noarch.rpm").read_bytes()
    group_primary = _primary(server.url, "yum-group", http_get(f"{group}repodata/repomd.xml")).decode()
    listed = re.search(r'<checksum type="sha256" pkgid="YES">(\w+)</checksum>\s*<summary>[^<]*</summary>'
                       r'(?:(?!</package>).)*href="hello-1.1-1.noarch.rpm"', group_primary, re.S)
    assert listed and hashlib.sha256(downloaded).hexdigest() == listed.group(1)
    # A package that only the proxy member has downloads through the group too.
    dnf(tmp_path, group, "download", f"--destdir={tmp_path / 'dl'}", "lib")
    assert (tmp_path / "dl" / "lib-3.0-1.noarch.rpm").read_bytes() == rpms["lib-3.0"].read_bytes()

    # Deleting hello-1.1 through the REST API removes it from the metadata once the coalescing delay is over
    # (the delay's exact timing is checked in test_yum_hosted; here the wait is bounded generously for load).
    components = json.loads(http_get(f"{server.url}/service/rest/v1/components?repository=yum-hosted"))["items"]
    [asset_id] = [c["assets"][0]["id"] for c in components if (c["name"], c["version"]) == ("hello", "1.1-1")]
    deleted = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-u",
                              f"admin:{ADMIN_PASSWORD}", "-X", "DELETE",
                              f"{server.url}/service/rest/v1/assets/{asset_id}"], capture_output=True, text=True)
    assert deleted.stdout == "204"
    wait_for(lambda: b"hello-1.1" not in _primary(server.url, "yum-hosted", http_get(
        f"{server.url}/repository/yum-hosted/repodata/repomd.xml")), timeout=60)
    assert available(tmp_path, group) == ["hello-1.0-1.noarch", "lib-3.0-1.noarch", "world-2.0-1.noarch"]


def _primary(server_url: str, repo: str, repomd: bytes) -> bytes:
    """primary.xml of ``repo`` after checking every file repomd.xml names against its checksum."""
    primary = b""
    for block in re.findall(r"<data type=.*?</data>", repomd.decode(), re.S):
        href = re.search(r'<location href="([^"]+)"', block).group(1)
        checksum = re.search(r'<checksum type="sha256">(\w+)<', block).group(1)
        data = http_get(f"{server_url}/repository/{repo}/{href}")
        assert hashlib.sha256(data).hexdigest() == checksum, href
        if 'type="primary"' in block:
            primary = gzip.decompress(data)
    return primary


def test_proxy_passes_release_paths_and_survives_upstream_outage(yum_app, live_server_factory, rpms, tmp_path,
                                                                 upstream):
    ts = yum_app({"name": "yum-proxy", "format": "yum", "type": "proxy",
                  "proxy": {"remoteUrl": upstream.url, "metadataMaxAge": 0}})
    server = live_server_factory(ts)
    baseurl = f"{server.url}/repository/yum-proxy/9/os/x86_64/"
    assert available(tmp_path, baseurl) == ["lib-3.0-1.noarch", "world-2.0-1.noarch"]
    dnf(tmp_path, baseurl, "download", f"--destdir={tmp_path / 'dl'}", "world")
    assert (tmp_path / "dl" / "world-2.0-1.noarch.rpm").read_bytes() == rpms["world-2.0"].read_bytes()
    catalog = ts.stowage.catalog
    kinds = {a.path.rsplit("/", 1)[-1].split("-")[-1]: a.kind.value for a in catalog.iter_assets("yum-proxy")}
    assert kinds["repomd.xml"] == "metadata" and kinds["primary.xml.gz"] == "content"
    upstream.stop()  # the upstream goes away: dnf keeps working from the cache
    assert available(tmp_path, baseurl) == ["lib-3.0-1.noarch", "world-2.0-1.noarch"]
    shutil.rmtree(tmp_path / "dl")
    dnf(tmp_path, baseurl, "download", f"--destdir={tmp_path / 'dl'}", "world")
    assert (tmp_path / "dl" / "world-2.0-1.noarch.rpm").exists()


def test_dnf_reads_hosted_with_depth(yum_app, live_server_factory, rpms, tmp_path):
    ts = yum_app(depth=1, delay=0.1)
    server = live_server_factory(ts)
    for key in ("hello-1.0", "world-2.0"):
        assert curl_upload(server.url, "yum-hosted", rpms[key], f"el9/Packages/{rpms[key].name}").stdout == "201"
    assert curl_upload(server.url, "yum-hosted", rpms["lib-3.0"], "el8/lib-3.0-1.noarch.rpm").stdout == "201"
    wait_for(lambda: not pending_roots(ts.stowage.repository("yum-hosted")))
    assert available(tmp_path, f"{server.url}/repository/yum-hosted/el9/") == ["hello-1.0-1.noarch",
                                                                                  "world-2.0-1.noarch"]
    assert available(tmp_path, f"{server.url}/repository/yum-hosted/el8/") == ["lib-3.0-1.noarch"]
