"""Three nodes, one PostgreSQL catalog, one S3 bucket, nginx in front: any node serves any request, the
catalog's guarantees hold between nodes, and a node killed mid-upload leaves nothing torn."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import pytest
import urllib3

from cluster_kit import Cluster
from engine_kit import download_sha256
from stowage.testing import file_sha256, sparse_file
from stowage.testing.harness import basic_auth

pytestmark = pytest.mark.slow

MIB = 1024 * 1024
HTTP = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=120), maxsize=64)
AUTH = basic_auth()


def cluster_config(blob_store: str, remote: str) -> str:
    return f'''
[server]
secretKey = "one-key-for-every-node-of-this-cluster"

{blob_store}
[[repositories]]
name = "raw-hosted"
format = "raw"
type = "hosted"
storage = {{ blobStoreName = "shared", writePolicy = "ALLOW_ONCE" }}

[[repositories]]
name = "raw-proxy"
format = "raw"
type = "proxy"
storage = {{ blobStoreName = "shared" }}
proxy = {{ remoteUrl = "{remote}" }}
'''


@pytest.fixture
def cluster(tmp_path: Path, postgres_server, s3_server, s3_bucket, fault_upstream) -> Iterator[Cluster]:
    """Three nodes, one PostgreSQL database, one S3 bucket (moto, or MinIO: see docs/scaling.md)."""
    url = postgres_server.new_database()
    config = cluster_config(s3_server.toml("shared", s3_bucket), fault_upstream.url)
    cluster = Cluster(tmp_path / "cluster", config, url)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def put(base: str, path: str, body, **headers) -> int:
    return HTTP.request("PUT", f"{base}/repository/raw-hosted/{path}", body=body,
                        headers={**AUTH, **headers}).status


def test_any_node_serves_what_another_stored(cluster: Cluster) -> None:
    for i in range(6):
        assert put(cluster.url, f"lb/{i}.txt", f"file {i}".encode()) == 201
    for node in cluster.nodes:
        for i in range(6):
            response = HTTP.request("GET", f"{node.url}/repository/raw-hosted/lb/{i}.txt")
            assert (response.status, response.data) == (200, f"file {i}".encode())
    uploads = [line for line in cluster.node_served() if '"PUT /repository/raw-hosted/lb/' in line]
    assert len({line.split()[0] for line in uploads}) == 3  # round robin really spread the uploads


def test_50_cold_proxy_misses_over_three_nodes_make_one_upstream_get(cluster: Cluster, fault_upstream,
                                                                      tmp_path: Path) -> None:
    path = sparse_file(tmp_path / "big.bin", 24 * MIB, pattern=os.urandom(64 * 1024))
    fault_upstream.put("releases/big.bin", path)
    fault_upstream.throttle(16 * MIB)  # the download lasts over a second: the 50 really overlap it
    barrier = threading.Barrier(50)

    def fetch(_: int) -> tuple[int, str, dict]:
        barrier.wait()
        return download_sha256(f"{cluster.url}/repository/raw-proxy/releases/big.bin")

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(fetch, range(50)))
    assert fault_upstream.count("releases/big.bin") == 1
    assert [(status, digest) for status, digest, _ in results] == [(200, file_sha256(path))] * 50
    served = {line.split()[0] for line in cluster.node_served() if "releases/big.bin" in line}
    assert len(served) == 3


def test_allow_once_between_two_nodes_has_one_winner_and_a_clear_400(cluster: Cluster) -> None:
    first, second = cluster.nodes[0], cluster.nodes[1]
    for round_ in range(8):
        barrier = threading.Barrier(2)

        def upload(node, content: bytes) -> tuple[int, bytes]:
            barrier.wait()
            response = HTTP.request("PUT", f"{node.url}/repository/raw-hosted/once/{round_}.bin", body=content,
                                    headers=AUTH)
            return response.status, response.data

        with ThreadPoolExecutor(2) as pool:
            a, b = pool.map(upload, (first, second), (b"from first" * 1000, b"from second" * 1000))
        assert sorted([a[0], b[0]]) == [201, 400], (a, b)
        loser = a if a[0] == 400 else b
        assert b"does not allow updating assets" in loser[1], loser  # Nexus's words
        winner_body = b"from first" * 1000 if a[0] == 201 else b"from second" * 1000
        for node in cluster.nodes:
            assert HTTP.request("GET", f"{node.url}/repository/raw-hosted/once/{round_}.bin").data == winner_body


def test_a_node_killed_during_uploads_leaves_committed_files_intact_and_nothing_partial(cluster: Cluster) -> None:
    victim = cluster.nodes[2]
    chunk = os.urandom(256 * 1024)
    started = threading.Event()

    def slow_body() -> Iterator[bytes]:
        for i in range(200):  # 50 MiB at about 10 MiB/s: still running when the node dies
            if i == 4:
                started.set()
            time.sleep(0.02)
            yield chunk

    def doomed_upload() -> str:
        try:
            return str(HTTP.request("PUT", f"{victim.url}/repository/raw-hosted/killed/partial.bin", body=slow_body(),
                                    headers={**AUTH, "Content-Length": str(200 * len(chunk))},
                                    chunked=False).status)
        except (urllib3.exceptions.HTTPError, OSError) as error:
            return type(error).__name__

    committed: dict[str, str] = {}

    def steady_uploads() -> None:
        for i in range(20):
            content = os.urandom(64 * 1024) + str(i).encode()
            if put(cluster.url, f"killed/ok-{i}.bin", content) == 201:
                committed[f"killed/ok-{i}.bin"] = hashlib.sha256(content).hexdigest()

    with ThreadPoolExecutor(2) as pool:
        doomed = pool.submit(doomed_upload)
        steady = pool.submit(steady_uploads)
        assert started.wait(30)
        victim.crash()  # SIGKILL of the whole node, workers included (a lone supervisor kill drains them)
        steady.result()
        outcome = doomed.result()
    assert outcome != "201"  # the client saw the failure, never a success
    assert len(committed) == 20  # nginx moved the steady uploads to the nodes still alive
    victim.start(timeout=60)
    for node in cluster.nodes:
        assert HTTP.request("GET", f"{node.url}/repository/raw-hosted/killed/partial.bin").status == 404
        for path, digest in committed.items():
            status, got, _ = download_sha256(f"{node.url}/repository/raw-hosted/{path}")
            assert (status, got) == (200, digest)
    # The half-written upload can be made again: nothing of it was recorded.
    assert put(cluster.url, "killed/partial.bin", b"complete now") == 201
