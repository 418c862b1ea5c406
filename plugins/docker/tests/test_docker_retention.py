"""Docker retention end to end: tag delete, repository.docker.gc, upload purge and blobstore.compact free the
bytes (measured with du), and the images still kept pull byte for byte with skopeo."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import urllib3

from docker_kit import skopeo, wait_port
from oci_layout import Layout
from stowage.testing import free_port
from stowage.testing.retention import assert_version_order

V1 = "/service/rest/v1"
AUTH = urllib3.make_headers(basic_auth="admin:admin123")


def du(path: Path) -> int:
    return int(subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True).stdout.split()[0])


def run_task(url: str, body: dict) -> dict:
    created = urllib3.request("POST", f"{url}{V1}/tasks", json=body, headers=AUTH)
    assert created.status == 201, created.data
    task_id = created.json()["id"]
    assert urllib3.request("POST", f"{url}{V1}/tasks/{task_id}/run", headers=AUTH).status == 204
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        task = urllib3.request("GET", f"{url}{V1}/tasks/{task_id}", headers=AUTH).json()
        if task["currentState"] == "WAITING" and task["lastRunResult"]:
            assert task["lastRunResult"] == "OK", task
            return task
        time.sleep(0.05)
    raise AssertionError("task did not finish")


def test_docker_tags_order_by_push_time(stowage_app):
    assert_version_order(stowage_app.stowage, "docker", ["latest", "1.0", "0.9", "nightly"],
                         by_publication=True)


def test_deleted_tag_gc_and_compact_free_exactly_its_own_layers(tmp_path: Path, stowage_factory,
                                                                live_server_factory) -> None:
    port = free_port()
    ts = stowage_factory(blob_gc_grace_seconds=0, repositories=[
        dict(name="docker-hosted", format="docker", type="hosted", docker={"httpPort": port})])
    server = live_server_factory(ts)
    wait_port(port)
    hosted = f"127.0.0.1:{port}"
    layout = Layout(tmp_path / "img")
    base = {"base.bin": os.urandom(200_000)}
    own = {}
    for tag in ("1", "2", "3"):
        own[tag] = {f"app-{tag}.bin": os.urandom(300_000)}
        layout.tag(layout.image([base, own[tag]]), tag)
        skopeo("copy", f"oci:{layout.root}:{tag}", f"docker://{hosted}/orchestrator-app:{tag}",
               "--dest-creds", "admin:admin123", "--dest-tls-verify=false")
    store_root = ts.stowage.blob_store("default").root
    # an upload that was started and never finished
    started = urllib3.request("POST", f"http://{hosted}/v2/orchestrator-app/blobs/uploads/", headers=AUTH)
    assert started.status == 202
    assert urllib3.request("PATCH", f"http://{hosted}{started.headers['Location'].split(hosted, 1)[-1]}",
                           body=os.urandom(150_000), headers={**AUTH, "Content-Type": "application/octet-stream"}
                           ).status == 202
    manifest_1 = urllib3.request("GET", f"http://{hosted}/v2/orchestrator-app/manifests/1",
                                 headers={**AUTH, "Accept": "application/vnd.oci.image.manifest.v1+json"})
    document = json.loads(manifest_1.data)
    only_1 = len(manifest_1.data) + document["config"]["size"] + document["layers"][1]["size"]
    before = du(store_root)

    deleted = urllib3.request("DELETE", f"http://{hosted}/v2/orchestrator-app/manifests/1", headers=AUTH)
    assert deleted.status == 202
    tags = urllib3.request("GET", f"http://{hosted}/v2/orchestrator-app/tags/list", headers=AUTH).json()["tags"]
    assert tags == ["2", "3"]
    gc = run_task(server.url, {"type": "repository.docker.gc", "name": "gc", "enabled": True,
                               "frequency": {"schedule": "manual"},
                               "properties": {"repositoryName": "docker-hosted", "deployOffset": "0"}})
    assert "removed 1 unused manifests and 2 layer or config blobs" in gc["message"], gc
    events = urllib3.request("GET", f"{server.url}{V1}/audit?action=content.docker-gc", headers=AUTH).json()["items"]
    assert len(events) == 3 and {e["repository"] for e in events} == {"docker-hosted"}
    purge = run_task(server.url, {"type": "repository.docker.upload-purge", "name": "purge",
                                  "properties": {"age": "0"}})
    assert purge["message"].startswith("discarded 1 incomplete upload"), purge
    compact = run_task(server.url, {"type": "blobstore.compact", "name": "compact",
                                    "properties": {"blobstoreName": "default"}})
    assert compact["message"].startswith("deleted 3 unreferenced blob(s)"), compact
    freed = before - du(store_root)
    # the manifest, config and layer only :1 used, and the abandoned upload; never the shared base layer
    assert only_1 + 150_000 <= freed < only_1 + 150_000 + 64 * 1024, (freed, only_1)

    for tag in ("2", "3"):
        out = tmp_path / f"pulled-{tag}"
        skopeo("copy", "--src-tls-verify=false", "--src-creds", "admin:admin123",
               f"docker://{hosted}/orchestrator-app:{tag}", f"oci:{out}:{tag}")
        pulled = {p.name: p.read_bytes() for p in (out / "blobs" / "sha256").iterdir()}
        for name, data in pulled.items():
            assert (layout.root / "blobs" / "sha256" / name).read_bytes() == data
        assert len(pulled) == 4  # manifest, config, base layer, own layer
    gone = skopeo("inspect", "--tls-verify=false", "--creds", "admin:admin123",
                  f"docker://{hosted}/orchestrator-app:1", check=False)
    assert gone.returncode != 0


def test_gc_keeps_a_manifest_lists_children_and_young_manifests(tmp_path: Path, stowage_factory,
                                                                live_server_factory) -> None:
    ts = stowage_factory(repositories=[dict(name="docker-hosted", format="docker", type="hosted")])
    server = live_server_factory(ts)
    port = server.url.rsplit(":", 1)[1]
    target = f"127.0.0.1:{port}/docker-hosted"
    layout = Layout(tmp_path / "img")
    layout.multi_arch("multi")
    layout.tag(layout.image([{"x": b"untagged soon"}]), "solo")
    for tag in ("multi", "solo"):
        skopeo("copy", "--all", f"oci:{layout.root}:{tag}", f"docker://{target}/orchestrator-m:{tag}",
               "--dest-creds", "admin:admin123", "--dest-tls-verify=false")
    # deleting the tag's component through the REST API is a tag delete
    components = urllib3.request("GET", f"{server.url}{V1}/components?repository=docker-hosted", headers=AUTH).json()
    solo = next(c for c in components["items"] if c["version"] == "solo")
    assert urllib3.request("DELETE", f"{server.url}{V1}/components/{solo['id']}", headers=AUTH).status == 204
    tags = urllib3.request("GET", f"{server.url}/v2/docker-hosted/orchestrator-m/tags/list", headers=AUTH).json()
    assert tags["tags"] == ["multi"]
    from stowage_docker.retention import collect_garbage

    repository = ts.stowage.repository("docker-hosted")
    assert "removed 0 unused manifests" in collect_garbage(repository, deploy_offset_hours=1)  # too young
    message = collect_garbage(repository, deploy_offset_hours=0)
    assert "removed 1 unused manifests and 2 layer or config blobs" in message, message
    out = tmp_path / "back"
    skopeo("copy", "--all", "--src-tls-verify=false", "--src-creds", "admin:admin123",
           f"docker://{target}/orchestrator-m:multi", f"oci:{out}:multi")
    assert len(list((out / "blobs" / "sha256").iterdir())) == 7  # index, 2 manifests, 2 configs, 2 layers


def test_docker_gc_task_refuses_what_is_not_a_hosted_docker_repository(stowage_factory, live_server_factory):
    ts = stowage_factory(repositories=[dict(name="files", format="raw", type="hosted")])
    server = live_server_factory(ts)
    answer = urllib3.request("POST", f"{server.url}{V1}/tasks", headers=AUTH, json={
        "type": "repository.docker.gc", "name": "gc", "properties": {"repositoryName": "nope"}})
    assert answer.status == 400 and "does not exist" in answer.data.decode()
    answer = urllib3.request("POST", f"{server.url}{V1}/tasks", headers=AUTH, json={
        "type": "repository.docker.gc", "name": "gc", "properties": {}})
    assert answer.status == 400 and "repositoryName is required" in answer.data.decode()
