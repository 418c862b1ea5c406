"""Issue 2 acceptance: content-addressed blobs (one copy per digest) and crash safety of uploads."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from core_helpers import RAW_HOSTED, curl, sha256_file, write_sparse_random

TWO_REPOS = RAW_HOSTED + """
[[repositories]]
name = "raw-other"
format = "raw"
type = "hosted"
"""


def blob_files(data_dir: Path) -> list[Path]:
    return sorted(p for p in (data_dir / "blobs").glob("*/blobs/*/*/*") if p.is_file())


def temp_files(data_dir: Path) -> list[Path]:
    return sorted(p for p in (data_dir / "blobs").glob("*/tmp/*") if p.is_file())


def assert_blobs_intact(data_dir: Path) -> None:
    """Every stored blob is named by the sha256 of its whole content: nothing partial is addressable."""
    for path in blob_files(data_dir):
        assert sha256_file(path) == path.name, f"{path} does not hold the bytes its name promises"


def test_same_bytes_in_two_repositories_are_one_blob(serve_factory, tmp_path):
    server = serve_factory(TWO_REPOS)
    source = tmp_path / "same.bin"
    digest = write_sparse_random(source, 3 << 20, seed=7)
    auth = ("-u", f"admin:{server.password}")
    for url in (f"{server.url}/repository/raw-hosted-dev/one/same.bin",
                f"{server.url}/repository/raw-other/two/copy.bin",
                f"{server.url}/repository/raw-other/three/again.bin"):
        assert curl(*auth, "--upload-file", str(source), "-o", "/dev/null", "-w", "%{http_code}", url).stdout == "201"
    blobs = blob_files(server.data_dir)
    assert [p.name for p in blobs] == [digest]
    assert blobs[0].stat().st_size == 3 << 20
    assert temp_files(server.data_dir) == []
    # each path still answers with its own name and the shared bytes
    got = tmp_path / "got"
    curl("-o", str(got), f"{server.url}/repository/raw-other/two/copy.bin")
    assert sha256_file(got) == digest
    # deleting one reference keeps the blob for the others
    assert curl(*auth, "-X", "DELETE", "-o", "/dev/null", "-w", "%{http_code}",
                f"{server.url}/repository/raw-hosted-dev/one/same.bin").stdout == "204"
    curl("-o", str(got), f"{server.url}/repository/raw-other/three/again.bin")
    assert sha256_file(got) == digest


def _wait_for(predicate, timeout: float, interval: float = 0.002) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["while-receiving", "while-storing"])
def test_kill_9_mid_upload_leaves_nothing_visible(serve_factory, tmp_path, moment):
    data_dir = tmp_path / "data"
    server = serve_factory(data_dir=data_dir)
    source = tmp_path / "big.bin"
    size = 256 << 20
    write_sparse_random(source, size, seed=3)
    url = f"{server.url}/repository/raw-hosted-dev/crash/big.bin"
    args = ["curl", "-sS", "-u", f"admin:{server.password}", "--upload-file", str(source), "-o", "/dev/null", url]
    if moment == "while-receiving":
        args[1:1] = ["--limit-rate", "50M"]
    uploader = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if moment == "while-receiving":
            time.sleep(1.5)  # about 75 MiB of 256 sent
        else:
            # The handler has started writing the blob's temp file: kill before it can commit.
            assert _wait_for(lambda: bool(temp_files(data_dir)), timeout=60), server.log()
            time.sleep(0.05)
        server.crash()
    finally:
        uploader.wait(30)
    assert blob_files(data_dir) == []
    assert_blobs_intact(data_dir)
    leftovers = temp_files(data_dir)
    if moment == "while-storing":
        assert leftovers, "the kill came too late to test a half-written blob"

    restarted = serve_factory(data_dir=data_dir)
    url = f"{restarted.url}/repository/raw-hosted-dev/crash/big.bin"
    assert curl("-o", "/dev/null", "-w", "%{http_code}", url).stdout == "404"
    assert curl("-I", "-o", "/dev/null", "-w", "%{http_code}", url).stdout == "404"
    listing = curl("-u", f"admin:{restarted.password}",
                   f"{restarted.url}/service/rest/v1/assets?repository=raw-hosted-dev").stdout
    assert '"items": []' in listing or '"items":[]' in listing
    # a young temp file survives a restart (it could belong to another live process) but is never served...
    assert temp_files(data_dir) == leftovers
    # ...and the same upload now succeeds
    assert curl("-u", f"admin:{restarted.password}", "--upload-file", str(source), "-o", "/dev/null",
                "-w", "%{http_code}", url).stdout == "201"
    got = tmp_path / "got.bin"
    curl("-o", str(got), url)
    assert sha256_file(got) == sha256_file(source)
    assert_blobs_intact(data_dir)
    restarted.stop()

    # Once old, leftovers are swept at start-up.
    for path in leftovers:
        old = time.time() - 7 * 3600
        os.utime(path, (old, old))
    serve_factory(data_dir=data_dir)
    assert temp_files(data_dir) == []
