"""Single flight: concurrent misses of one path make exactly one upstream request, in one process or many."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from engine_kit import ServeProcess, download_sha256, proxy_config, raw_stack
from stowage.testing import file_sha256, sparse_file

MIB = 1024 * 1024


def _big_file(tmp_path, size=100 * MIB):
    path = sparse_file(tmp_path / "big.bin", size, pattern=os.urandom(64 * 1024))
    return path, file_sha256(path)


def _concurrently(urls):
    barrier = threading.Barrier(len(urls))

    def fetch(url):
        barrier.wait()
        return download_sha256(url)

    with ThreadPoolExecutor(len(urls)) as pool:
        return list(pool.map(fetch, urls))


@pytest.mark.slow
def test_50_concurrent_gets_of_an_uncached_100_mib_file_make_one_upstream_get(
        stowage_app, live_server_factory, fault_upstream, tmp_path):
    path, expected = _big_file(tmp_path)
    fault_upstream.put("releases/big.bin", path)
    fault_upstream.throttle(80 * MIB)  # the download lasts more than a second: clients really overlap it
    raw_stack(stowage_app, fault_upstream)
    server = live_server_factory(stowage_app)
    results = _concurrently([f"{server.url}/repository/raw-proxy/releases/big.bin"] * 50)
    assert fault_upstream.count("releases/big.bin") == 1
    assert [status for status, _, _ in results] == [200] * 50
    assert all(digest == expected for _, digest, _ in results)
    # The requests that arrived during the download were streamed from it, not held until the commit.
    assert sum(1 for _, _, headers in results if headers.get("X-Stowage-Cache") == "miss") >= 2
    assert stowage_app.stowage.catalog.get_asset("raw-proxy", "releases/big.bin").blob_sha256 == expected


@pytest.mark.slow
def test_two_apps_sharing_one_catalog_make_one_upstream_get(stowage_factory, live_server_factory,
                                                            fault_upstream, tmp_path):
    path, expected = _big_file(tmp_path, 40 * MIB)
    fault_upstream.put("shared.bin", path)
    fault_upstream.throttle(40 * MIB)
    first = stowage_factory(data_dir=tmp_path / "shared")
    raw_stack(first, fault_upstream)
    second = stowage_factory(data_dir=tmp_path / "shared")
    assert second.stowage is not first.stowage and second.stowage.node_id != first.stowage.node_id
    servers = [live_server_factory(first), live_server_factory(second)]
    urls = [f"{servers[i % 2].url}/repository/raw-group/shared.bin" for i in range(20)]
    results = _concurrently(urls)
    assert fault_upstream.count("shared.bin") == 1
    assert all(status == 200 and digest == expected for status, digest, _ in results)


@pytest.mark.slow
def test_two_server_processes_sharing_one_data_dir_make_one_upstream_get(fault_upstream, tmp_path):
    path, expected = _big_file(tmp_path, 40 * MIB)
    fault_upstream.put("procs.bin", path)
    fault_upstream.throttle(40 * MIB)
    config = proxy_config(tmp_path / "data", fault_upstream.url)
    first = ServeProcess(tmp_path, config, name="first")
    try:
        second = ServeProcess(tmp_path, config, name="second")
        try:
            urls = [f"{(first, second)[i % 2].url}/repository/raw-proxy/procs.bin" for i in range(16)]
            results = _concurrently(urls)
        finally:
            second.stop()
    finally:
        first.stop()
    assert fault_upstream.count("procs.bin") == 1
    assert all(status == 200 and digest == expected for status, digest, _ in results)
