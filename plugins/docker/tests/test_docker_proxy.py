"""Proxy and group against real upstreams on loopback: Debian's docker-registry, and a Stowage that
demands the bearer-token flow."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import urllib3

from conftest import skopeo
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


def test_concurrent_pulls_of_one_layer(tmp_path: Path, docker_layout, go_registry) -> None:
    push_upstream(tmp_path, go_registry.url, "team/tool", "1", b"x" * 300_000)
    server = docker_layout(go_registry.url)
    http = urllib3.PoolManager(maxsize=8, headers=urllib3.make_headers(basic_auth="admin:admin123"))
    manifest = json.loads(http.request("GET", f"http://{server.group}/v2/team/tool/manifests/1", headers={
        "Accept": "application/vnd.oci.image.manifest.v1+json"}).data)
    layer = manifest["layers"][0]
    results: list[bytes] = []

    def pull() -> None:
        results.append(http.request("GET", f"http://{server.group}/v2/team/tool/blobs/{layer['digest']}").data)

    threads = [threading.Thread(target=pull) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and all(len(body) == layer["size"] for body in results)
    assets = [a for a in server.ts.stowage.catalog.iter_assets("docker-proxy") if "/blobs/" in a.path]
    assert {a.blob_sha256 for a in assets} >= {layer["digest"][7:]}


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
