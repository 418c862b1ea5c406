"""Proxying a 1 GiB file keeps the server's memory flat (streamed to disk and to the client)."""

from __future__ import annotations

import shutil
import threading

import pytest

from engine_kit import ServeProcess, download_sha256, proxy_config
from stowage.testing import file_sha256, sparse_file

GIB = 1024 ** 3
RSS_LIMIT = 150 * 1024 * 1024


@pytest.mark.slow
def test_rss_stays_under_150_mb_while_proxying_1_gib(fault_upstream, tmp_path):
    big = sparse_file(tmp_path / "huge.bin", GIB)
    expected = file_sha256(big)
    fault_upstream.put("huge.bin", big)
    data_dir = tmp_path / "data"
    server = ServeProcess(tmp_path, proxy_config(data_dir, fault_upstream.url))
    peak = [server.rss_bytes()]
    done = threading.Event()

    def sample():
        while not done.wait(0.05):
            peak[0] = max(peak[0], server.rss_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        miss = download_sha256(f"{server.url}/repository/raw-proxy/huge.bin")
        hit = download_sha256(f"{server.url}/repository/raw-proxy/huge.bin")
    finally:
        done.set()
        sampler.join()
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    assert miss[0] == 200 and miss[1] == expected and miss[2]["X-Stowage-Cache"] == "miss"
    assert hit[0] == 200 and hit[1] == expected and hit[2]["X-Stowage-Cache"] == "hit"
    assert fault_upstream.count("huge.bin") == 1
    print(f"peak RSS {peak[0] / 2**20:.0f} MiB")
    assert peak[0] < RSS_LIMIT, f"server RSS peaked at {peak[0] / 2**20:.0f} MiB"
