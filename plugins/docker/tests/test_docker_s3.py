"""A docker hosted repository on an S3 blob store (moto on loopback, or STOWAGE_TEST_S3_ENDPOINT):
skopeo push and pull, and a chunked upload of small PATCHes (under S3's 5 MiB part minimum)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import urllib3

from docker_kit import skopeo, wait_port
from oci_layout import Layout
from stowage.blobstore import BlobStoreConfig
from stowage.testing import free_port

pytest.importorskip("boto3")
MIB = 1 << 20
AUTH = urllib3.make_headers(basic_auth="admin:admin123")


@pytest.fixture
def s3_registry(stowage_factory, live_server_factory, s3_server, s3_bucket, request):
    port = free_port()
    redirect = getattr(request, "param", False)
    store = BlobStoreConfig(name="s3", type="S3", attributes={"bucketConfiguration": s3_server.bucket_configuration(
        s3_bucket, prefix="docker", multipartPartSize=5 * MIB, redirectDownloads=redirect)})
    ts = stowage_factory(blob_stores=[store], repositories=[
        dict(name="docker-hosted", format="docker", type="hosted", docker={"httpPort": port},
             storage={"blobStoreName": "s3"})])
    server = live_server_factory(ts)
    wait_port(port)
    server.registry = f"127.0.0.1:{port}"
    server.bucket = s3_bucket
    server.redirect = redirect
    return server


@pytest.mark.parametrize("s3_registry", [False, True], ids=["relayed", "redirected"], indirect=True)
def test_skopeo_push_and_pull_through_an_s3_blob_store(tmp_path: Path, s3_registry, s3_server) -> None:
    layout = Layout(tmp_path / "img")
    desc = layout.big_layer_image(12 * MIB)  # more than two parts
    layout.tag(desc, "1.0")
    skopeo("copy", f"oci:{layout.root}:1.0", f"docker://{s3_registry.registry}/big:1.0",
           "--dest-creds", "admin:admin123", "--dest-tls-verify=false")
    skopeo("copy", "--src-tls-verify=false", "--src-creds", "admin:admin123",
           f"docker://{s3_registry.registry}/big:1.0", f"oci:{tmp_path / 'back'}:1.0")
    # skopeo compresses the layer on push; what it pulls back (digests verified) is what the registry holds
    pushed = json.loads(skopeo("inspect", "--tls-verify=false", "--creds", "admin:admin123",
                               f"docker://{s3_registry.registry}/big:1.0").stdout)
    back = json.loads((tmp_path / "back" / "index.json").read_text())["manifests"][0]["digest"]
    assert back == pushed["Digest"]
    pulled = {p.name for p in (tmp_path / "back" / "blobs" / "sha256").iterdir()}
    assert len(pulled) == 3  # manifest, config, the layer
    stored = {key.rsplit("/", 1)[1] for key in s3_server.keys(s3_registry.bucket, "docker/blobs/")}
    assert pulled == stored
    layer = max((tmp_path / "back" / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    assert layer.stat().st_size > 10 * MIB  # random bytes: the multipart path was taken
    # with redirectDownloads the layer came from the bucket (skopeo followed a 307)
    answer = urllib3.PoolManager().request("GET", f"http://{s3_registry.registry}/v2/big/blobs/sha256:{layer.name}",
                                           headers=AUTH, redirect=False, preload_content=False)
    assert answer.status == (307 if s3_registry.redirect else 200)
    answer.release_conn()
    assert s3_server.keys(s3_registry.bucket, "docker/tmp/") == []
    assert s3_server.multipart_uploads(s3_registry.bucket) == []


def test_small_chunked_patches_assemble_into_one_verified_blob(s3_registry, s3_server) -> None:
    http = urllib3.PoolManager()
    base = f"http://{s3_registry.registry}/v2/chunky/blobs/uploads/"
    data = os.urandom(7 * MIB + 3)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    started = http.request("POST", base, headers=AUTH)
    assert started.status == 202, started.data
    location = started.headers["Location"]
    offset = 0
    for size in (MIB, 2 * MIB, 3, 4 * MIB):  # each under the 5 MiB part minimum
        chunk = data[offset:offset + size]
        answer = http.request("PATCH", location, body=chunk, headers={
            **AUTH, "Content-Type": "application/octet-stream",
            "Content-Range": f"{offset}-{offset + len(chunk) - 1}"})
        assert answer.status == 202, answer.data
        offset += len(chunk)
        assert answer.headers["Range"] == f"0-{offset - 1}"
        location = answer.headers["Location"]
    out_of_order = http.request("PATCH", location, body=b"x", headers={**AUTH, "Content-Range": "5-5"})
    assert out_of_order.status == 416
    wrong = http.request("PUT", f"{location}{'&' if '?' in location else '?'}digest=sha256:{'0' * 64}",
                         headers=AUTH)
    assert wrong.status == 400 and b"DIGEST_INVALID" in wrong.data
    # the failed commit discarded the upload: start again, in one PATCH, and commit right
    started = http.request("POST", base, headers=AUTH)
    location = started.headers["Location"]
    location = http.request("PATCH", location, body=data, headers=AUTH).headers["Location"]
    done = http.request("PUT", f"{location}{'&' if '?' in location else '?'}digest={digest}", headers=AUTH)
    assert done.status == 201, done.data
    got = http.request("GET", f"http://{s3_registry.registry}/v2/chunky/blobs/{digest}", headers=AUTH)
    assert got.status == 200 and hashlib.sha256(got.data).hexdigest() == digest.split(":")[1]
    ranged = http.request("GET", f"http://{s3_registry.registry}/v2/chunky/blobs/{digest}",
                          headers={**AUTH, "Range": "bytes=100-199"})
    assert ranged.status == 206 and ranged.data == data[100:200]
    assert s3_server.keys(s3_registry.bucket, "docker/tmp/") == []
    assert s3_server.multipart_uploads(s3_registry.bucket) == []


def test_a_chunked_upload_moves_between_nodes_sharing_the_catalog_and_bucket(stowage_factory, live_server_factory,
                                                                             s3_server, s3_bucket, tmp_path):
    """POST on one node, PATCHes alternating between two, PUT on the second: every request may land on
    any node behind a load balancer."""
    store = BlobStoreConfig(name="s3", type="S3", attributes={"bucketConfiguration": s3_server.bucket_configuration(
        s3_bucket, prefix="nodes", multipartPartSize=5 * MIB)})
    repositories = [dict(name="docker-hosted", format="docker", type="hosted", storage={"blobStoreName": "s3"})]
    nodes = [live_server_factory(stowage_factory(data_dir=tmp_path / "shared", blob_stores=[store],
                                                 repositories=repositories)) for _ in range(2)]
    http = urllib3.PoolManager()
    path = "/repository/docker-hosted/v2/moving/blobs/uploads/"
    data = os.urandom(6 * MIB + 11)
    started = http.request("POST", nodes[0].url + path, headers=AUTH)
    assert started.status == 202, started.data
    location = started.headers["Location"].split("/repository/", 1)[1]
    offset = 0
    for n, size in enumerate((2 * MIB, 3 * MIB, MIB + 11)):
        node = nodes[(n + 1) % 2]
        answer = http.request("PATCH", f"{node.url}/repository/{location}", body=data[offset:offset + size],
                              headers={**AUTH, "Content-Range": f"{offset}-{offset + size - 1}"})
        assert answer.status == 202, answer.data
        offset += size
        location = answer.headers["Location"].split("/repository/", 1)[1]
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    done = http.request("PUT", f"{nodes[1].url}/repository/{location}{'&' if '?' in location else '?'}digest={digest}",
                        headers=AUTH)
    assert done.status == 201, done.data
    got = http.request("GET", f"{nodes[0].url}/repository/docker-hosted/v2/moving/blobs/{digest}", headers=AUTH)
    assert got.status == 200 and got.data == data
    assert s3_server.keys(s3_bucket, "nodes/tmp/") == [] and s3_server.multipart_uploads(s3_bucket) == []
