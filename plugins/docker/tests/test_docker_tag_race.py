"""ALLOW_ONCE tags under concurrent pushes: two workers sharing one catalog never both point a tag."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import urllib3

from stowage.testing import ADMIN_PASSWORD, free_port
from stowage.settings import CatalogSettings
from stowage.testing.harness import basic_auth

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


CONFIG = """
[server]
dataDir = "{data_dir}"

[[repositories]]
name = "once"
format = "docker"
type = "hosted"
storage = {{ writePolicy = "ALLOW_ONCE" }}
"""


def _serve(tmp_path: Path, config: Path, name: str) -> tuple[subprocess.Popen, str]:
    """``stowage serve`` in its own interpreter: a worker process with its own catalog connection."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / f"{name}.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "stowage.cli", "--log-level", "WARNING", "serve", "--config",
                                str(config), "--port", str(port), "--workers", "1"], stdout=log,
                               stderr=subprocess.STDOUT, env={**os.environ,
                                                              "STOWAGE_ADMIN_PASSWORD": ADMIN_PASSWORD})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, (tmp_path / f"{name}.log").read_text()
        try:
            if urllib3.request("GET", f"{url}/service/rest/v1/status", timeout=1).status == 200:
                return process, url
        except urllib3.exceptions.HTTPError:
            time.sleep(0.1)
    process.terminate()
    raise AssertionError(f"stowage serve did not start: {(tmp_path / f'{name}.log').read_text()}")


@pytest.fixture(params=["two-apps", "two-processes"])
def workers(request, stowage_factory, live_server_factory, tmp_path) -> Iterator[tuple[list[str], Callable[[str], Any]]]:
    """Two workers sharing one data directory, and a reader of the shared catalog."""
    if request.param == "two-apps":
        first = stowage_factory(data_dir=tmp_path / "shared", repositories=[
            dict(name="once", format="docker", type="hosted", storage={"writePolicy": "ALLOW_ONCE"})])
        second = stowage_factory(data_dir=tmp_path / "shared")
        yield [live_server_factory(first).url, live_server_factory(second).url], first.stowage.catalog
        return
    config = tmp_path / "stowage.toml"
    config.write_text(CONFIG.format(data_dir=tmp_path / "shared"))
    processes = []
    try:
        for name in ("first", "second"):
            processes.append(_serve(tmp_path, config, name))
        # the processes' catalog is the data directory's SQLite file, whatever STOWAGE_TEST_CATALOG says
        reader = stowage_factory(data_dir=tmp_path / "shared", catalog=CatalogSettings())
        yield [url for _, url in processes], reader.stowage.catalog
    finally:
        for process, _ in processes:
            process.terminate()
            process.wait(15)


@pytest.mark.slow
def test_concurrent_pushes_of_one_allow_once_tag_from_two_workers_have_exactly_one_winner(workers) -> None:
    urls, catalog = workers
    auth = basic_auth("admin", ADMIN_PASSWORD)
    http = urllib3.PoolManager(maxsize=4)

    def upload(data: bytes) -> str:
        digest = _digest(data)
        r = http.request("POST", f"{urls[0]}/v2/once/app/blobs/uploads/?digest={digest}", body=data,
                         headers={**auth, "Content-Type": "application/octet-stream"})
        assert r.status == 201, r.data
        return digest

    def push(url: str, tag: str, body: bytes, barrier: threading.Barrier | None = None) -> urllib3.BaseHTTPResponse:
        if barrier is not None:
            barrier.wait()
        return http.request("PUT", f"{url}/v2/once/app/manifests/{tag}", body=body,
                            headers={**auth, "Content-Type": OCI_MANIFEST})

    config = upload(b"{}")
    with ThreadPoolExecutor(2) as pool:
        for round_ in range(ROUNDS):
            tag = f"r{round_}"
            bodies = [_manifest(config, f"{tag}-worker-{worker}".encode()) for worker in range(2)]
            for worker in range(2):
                upload(f"{tag}-worker-{worker}".encode())
            barrier = threading.Barrier(2)
            responses = list(pool.map(lambda w: push(urls[w], tag, bodies[w], barrier), range(2)))
            assert sorted(r.status for r in responses) == [201, 403], (tag, [(r.status, r.data) for r in responses])
            winner = next(w for w, r in enumerate(responses) if r.status == 201)
            error = json.loads(responses[1 - winner].data)["errors"][0]
            assert error["code"] == "DENIED" and "ALLOW_ONCE" in error["message"]
            assert catalog.get_asset("once", f"v2/app/manifests/{tag}").blob_sha256 == _digest(bodies[winner])[7:]
            # Nothing of the refused push stays: not even its manifest by digest.
            assert catalog.get_asset("once", f"v2/app/manifests/{_digest(bodies[1 - winner])}") is None
            # Re-pushing the tag's own manifest is still fine, through either worker.
            assert push(urls[1 - winner], tag, bodies[winner]).status == 201
