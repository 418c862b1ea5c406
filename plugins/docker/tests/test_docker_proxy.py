"""Proxy and group against real upstreams on loopback: Debian's docker-registry, and a Stowage that
demands the bearer-token flow."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path

import pytest
import urllib3

from docker_kit import skopeo
from oci_layout import Layout

CREDS = ("--creds", "admin:admin123")


def push_upstream(tmp_path: Path, registry_url: str, name: str, tag: str, content: bytes) -> str:
    layout = Layout(tmp_path / f"src-{tag}")
    layout.tag(layout.image([{"file.txt": content}]), tag)
    host = registry_url.split("://", 1)[1]
    skopeo("copy", f"oci:{layout.root}:{tag}", f"docker://{host}/{name}:{tag}", "--dest-tls-verify=false")
    return json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{host}/{name}:{tag}").stdout)["Digest"]


def test_pull_through_group_survives_upstream_outage(tmp_path: Path, docker_layout, go_registry) -> None:
    digest = push_upstream(tmp_path, go_registry.url, "library/python", "3.12-slim", b"python!")
    server = docker_layout(go_registry.url, dockerProxy={"indexType": "HUB"}, proxy={"metadataMaxAge": 0})
    # Docker Hub naming: "python" is library/python upstream
    first = json.loads(skopeo("inspect", "--tls-verify=false", *CREDS,
                              f"docker://{server.group}/python:3.12-slim").stdout)
    assert first["Digest"] == digest
    skopeo("copy", "--src-tls-verify=false", "--src-creds", "admin:admin123",
           f"docker://{server.group}/python:3.12-slim", f"oci:{tmp_path / 'pulled'}:x")
    tags = json.loads(skopeo("list-tags", "--tls-verify=false", *CREDS, f"docker://{server.group}/python").stdout)
    assert tags["Tags"] == ["3.12-slim"]
    # the tag moves upstream: metadataMaxAge=0 revalidates with HEAD and picks up the new digest
    moved = push_upstream(tmp_path, go_registry.url, "library/python", "3.12-slim", b"python 2!")
    again = json.loads(skopeo("inspect", "--tls-verify=false", *CREDS,
                              f"docker://{server.group}/python:3.12-slim").stdout)
    assert again["Digest"] == moved != digest
    skopeo("copy", "--src-tls-verify=false", "--src-creds", "admin:admin123",
           f"docker://{server.group}/python:3.12-slim", f"oci:{tmp_path / 'warm'}:x")
    go_registry.stop()
    skopeo("copy", "--src-tls-verify=false", "--src-creds", "admin:admin123",
           f"docker://{server.group}/python:3.12-slim", f"oci:{tmp_path / 'offline'}:x")
    offline = json.loads((tmp_path / "offline" / "index.json").read_text())["manifests"][0]["digest"]
    assert offline == moved
    by_digest = skopeo("inspect", "--tls-verify=false", *CREDS, "--raw",
                       f"docker://{server.group}/python@{moved}")
    assert json.loads(by_digest.stdout)["schemaVersion"] == 2


def test_concurrent_pulls_of_one_layer(docker_layout, fault_upstream) -> None:
    """Eight clients pull one uncached layer: one upstream GET, streamed to all while it downloads."""
    layer = os.urandom(3 * 1024 * 1024)
    digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    fault_upstream.put(f"v2/team/tool/blobs/{digest}", layer)
    fault_upstream.throttle(1.5 * 1024 * 1024)  # the remote needs about 2 s: every pull overlaps the download
    server = docker_layout(fault_upstream.url)
    url = f"http://{server.group}/v2/team/tool/blobs/{digest}"
    http = urllib3.PoolManager(maxsize=8, headers=urllib3.make_headers(basic_auth="admin:admin123"))
    results: list[tuple[int, bytes, float]] = []

    def pull() -> None:
        started = time.monotonic()
        response = http.request("GET", url, preload_content=False)
        first = response.read(1)
        results.append((response.status, first + response.read(), time.monotonic() - started))

    threads = [threading.Thread(target=pull) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and all(status == 200 and body == layer for status, body, _ in results)
    assert fault_upstream.count(f"v2/team/tool/blobs/{digest}") == 1
    assets = [a for a in server.ts.stowage.catalog.iter_assets("docker-proxy") if "/blobs/" in a.path]
    assert [a.blob_sha256 for a in assets] == [digest[7:]]

    # The single download streamed: a client's first byte came well before the remote had sent it all.
    fault_upstream.put(f"v2/team/other/blobs/{digest}", layer)
    started = time.monotonic()
    response = http.request("GET", url.replace("team/tool", "team/other"), preload_content=False)
    response.read(1)
    first_byte = time.monotonic() - started
    rest = response.read()
    total = time.monotonic() - started
    assert response.status == 200 and len(rest) == len(layer) - 1
    assert total - first_byte > 1.0, f"first byte after {first_byte:.2f}s of {total:.2f}s: not streamed"


def test_a_proxied_blob_with_the_wrong_digest_is_never_stored(docker_layout, fault_upstream) -> None:
    claimed = "sha256:" + hashlib.sha256(b"the real layer").hexdigest()
    fault_upstream.put(f"v2/team/tool/blobs/{claimed}", b"something else entirely" * 1000)
    server = docker_layout(fault_upstream.url, httpClient={"autoBlock": False})
    http = urllib3.PoolManager(headers=urllib3.make_headers(basic_auth="admin:admin123"), retries=False)
    for _ in range(2):
        try:
            response = http.request("GET", f"http://{server.group}/v2/team/tool/blobs/{claimed}")
        except urllib3.exceptions.ProtocolError:
            pass  # cut off mid-body: the client sees the transfer fail
        else:
            assert response.status != 200 or hashlib.sha256(response.data).hexdigest() != claimed[7:]
            assert response.status != 200 or len(response.data) < 23 * 1000, "served complete as if valid"
        assert [a for a in server.ts.stowage.catalog.iter_assets("docker-proxy") if "/blobs/" in a.path] == []
    assert fault_upstream.count(f"v2/team/tool/blobs/{claimed}") == 2  # nothing cached, so asked again


def test_proxy_follows_upstream_bearer_challenge(tmp_path: Path, stowage_factory, live_server_factory,
                                                 docker_layout) -> None:
    upstream_ts = stowage_factory(anonymous_access=False,
                                  repositories=[dict(name="up", format="docker", type="hosted")])
    upstream = live_server_factory(upstream_ts)
    layout = Layout(tmp_path / "img")
    layout.tag(layout.image([{"secret.txt": b"private"}]), "1")
    skopeo("copy", f"oci:{layout.root}:1", f"docker://127.0.0.1:{upstream.port}/up/private:1",
           "--dest-creds", "admin:admin123", "--dest-tls-verify=false")
    # path routing on the upstream's main port: the image is "up/private" there
    server = docker_layout(upstream.url, httpClient={
        "authentication": {"type": "username", "username": "admin", "password": "admin123"}})
    pulled = json.loads(skopeo("inspect", "--tls-verify=false", *CREDS, f"docker://{server.group}/up/private:1").stdout)
    direct = json.loads(skopeo("inspect", "--tls-verify=false", *CREDS,
                               f"docker://127.0.0.1:{upstream.port}/up/private:1").stdout)
    assert pulled["Digest"] == direct["Digest"]
    anonymous = docker_layout(upstream.url)
    refused = skopeo("inspect", "--tls-verify=false", *CREDS, f"docker://{anonymous.group}/up/private:1", check=False)
    assert refused.returncode != 0


def test_token_service_and_revalidation_follow_the_retry_setting(stowage_factory, fault_upstream) -> None:
    """httpClient.connection.retries (default 0) holds for the token service and the HEAD revalidation."""
    from stowage.plugin import Asset, AssetKind, UpstreamError
    from stowage_docker import upstream

    ts = stowage_factory(repositories=[
        dict(name="once", format="docker", type="proxy", proxy={"remoteUrl": fault_upstream.url}),
        dict(name="twice", format="docker", type="proxy", proxy={"remoteUrl": fault_upstream.url},
             httpClient={"connection": {"retries": 1}})])
    fault_upstream.put("token", b"{}")
    fault_upstream.fault("status", "token", status=503)
    fault_upstream.put("v2/team/tool/manifests/1", b"{}")
    fault_upstream.fault("status", "v2/team/tool/manifests/1", status=503)
    challenge = f'Bearer realm="{fault_upstream.url}/token",service="registry",scope="repository:team/tool:pull"'
    tag = Asset(repository="once", path="v2/team/tool/manifests/1", blob_sha256="0" * 64, size=2,
                content_type="application/json", kind=AssetKind.METADATA)
    for name, attempts in (("once", 1), ("twice", 2)):
        repository = ts.stowage.repository(name)
        fault_upstream.clear_log()
        with pytest.raises(UpstreamError):
            upstream.auth_of(repository).authorize(repository, challenge)
        assert len([r for r in fault_upstream.log if r.path.startswith("token")]) == attempts
        with pytest.raises(UpstreamError):
            upstream.revalidate(repository, tag)
        assert fault_upstream.count("v2/team/tool/manifests/1", method="HEAD") == attempts


def test_group_guard_hides_a_proxy_image_from_tags_and_pulls(tmp_path: Path, docker_layout, go_registry) -> None:
    """Core's dependency-confusion guard: the upstream's orchestrator-app:2 is neither listed nor
    pullable through the group once the hosted member holds orchestrator-app; allowProxyNames frees it."""
    push_upstream(tmp_path, go_registry.url, "orchestrator-app", "2", b"public namesake")
    server = docker_layout(go_registry.url, proxy={"metadataMaxAge": 0})
    layout = Layout(tmp_path / "private")
    layout.tag(layout.image([{"file.txt": b"private"}]), "1")
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "admin:admin123", f"oci:{layout.root}:1",
           f"docker://{server.hosted}/orchestrator-app:1")

    def tags() -> list[str]:
        return json.loads(skopeo("list-tags", "--tls-verify=false", *CREDS,
                                 f"docker://{server.group}/orchestrator-app").stdout)["Tags"]

    assert tags() == ["1"]
    hidden = skopeo("inspect", "--tls-verify=false", *CREDS, f"docker://{server.group}/orchestrator-app:2",
                    check=False)
    assert hidden.returncode != 0 and "manifest unknown" in hidden.stderr.lower(), hidden.stderr
    stowage = server.ts.stowage
    for pattern in ("re:orchestrator-ap+", "orchestrator-*"):
        stowage.save_repository(stowage.parse_repository(
            {"name": "docker-group", "format": "docker", "type": "group",
             "group": {"memberNames": ["docker-hosted", "docker-proxy"], "allowProxyNames": [pattern]},
             "docker": {"httpPort": int(server.group.rpartition(":")[2])}}))
        assert sorted(tags()) == ["1", "2"], pattern
        skopeo("inspect", "--tls-verify=false", *CREDS, f"docker://{server.group}/orchestrator-app:2")


def test_group_answers_name_unknown_when_its_proxy_is_blocked_and_nothing_is_cached(docker_layout) -> None:
    """Hosted says no and the proxy is auto-blocked with nothing cached: 404 NAME_UNKNOWN saying so, so
    that clients fail fast instead of retrying a 503."""
    server = docker_layout("http://127.0.0.1:9")  # nothing listens: the first miss auto-blocks the proxy
    first = skopeo("inspect", "--tls-verify=false", *CREDS, f"docker://{server.group}/nobody-has-this:1",
                   check=False)
    assert first.returncode != 0
    blocked = server.ts.stowage.repository("docker-proxy")
    assert server.ts.stowage.catalog.remote_status(blocked.name).blocked_until > time.time()
    started = time.monotonic()
    again = skopeo("inspect", "--tls-verify=false", *CREDS, f"docker://{server.group}/nobody-has-this:1",
                   check=False)
    assert again.returncode != 0 and time.monotonic() - started < 10
    assert "name unknown" in again.stderr.lower(), again.stderr
    assert "docker-proxy is blocked with nothing cached" in again.stderr, again.stderr
