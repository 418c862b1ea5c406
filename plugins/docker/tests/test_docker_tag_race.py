"""ALLOW_ONCE tags under concurrent pushes: two workers sharing one catalog never both point a tag."""

from __future__ import annotations

import hashlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import urllib3

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ROUNDS = 25


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _manifest(config: str, layer: bytes) -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": _digest(layer),
                    "size": len(layer)}]}).encode()


@pytest.mark.slow
def test_concurrent_pushes_of_one_allow_once_tag_from_two_workers_have_exactly_one_winner(
        stowage_factory, live_server_factory, tmp_path) -> None:
    # Two apps on one data directory: two catalog connections, as two worker processes have.
    first = stowage_factory(data_dir=tmp_path / "shared", repositories=[
        dict(name="once", format="docker", type="hosted", storage={"writePolicy": "ALLOW_ONCE"})])
    second = stowage_factory(data_dir=tmp_path / "shared")
    servers = [live_server_factory(first), live_server_factory(second)]
    http = urllib3.PoolManager(maxsize=4)
    catalog = first.stowage.catalog

    def upload(data: bytes) -> str:
        digest = _digest(data)
        r = http.request("POST", f"{servers[0].url}/v2/once/app/blobs/uploads/?digest={digest}", body=data,
                         headers={**first.admin, "Content-Type": "application/octet-stream"})
        assert r.status == 201, r.data
        return digest

    def push(url: str, tag: str, body: bytes, barrier: threading.Barrier | None = None) -> urllib3.BaseHTTPResponse:
        if barrier is not None:
            barrier.wait()
        return http.request("PUT", f"{url}/v2/once/app/manifests/{tag}", body=body,
                            headers={**first.admin, "Content-Type": OCI_MANIFEST})

    config = upload(b"{}")
    with ThreadPoolExecutor(2) as pool:
        for round_ in range(ROUNDS):
            tag = f"r{round_}"
            bodies = [_manifest(config, f"{tag}-worker-{worker}".encode()) for worker in range(2)]
            for worker in range(2):
                upload(f"{tag}-worker-{worker}".encode())
            barrier = threading.Barrier(2)
            responses = list(pool.map(lambda w: push(servers[w].url, tag, bodies[w], barrier), range(2)))
            assert sorted(r.status for r in responses) == [201, 403], (tag, [(r.status, r.data) for r in responses])
            winner = next(w for w, r in enumerate(responses) if r.status == 201)
            error = json.loads(responses[1 - winner].data)["errors"][0]
            assert error["code"] == "DENIED" and "ALLOW_ONCE" in error["message"]
            assert catalog.get_asset("once", f"v2/app/manifests/{tag}").blob_sha256 == _digest(bodies[winner])[7:]
            # Nothing of the refused push stays: not even its manifest by digest.
            assert catalog.get_asset("once", f"v2/app/manifests/{_digest(bodies[1 - winner])}") is None
            # Re-pushing the tag's own manifest is still fine, through either worker.
            assert push(servers[1 - winner].url, tag, bodies[winner]).status == 201
