"""lastDownloaded: recorded in batches at most once per interval, across workers; proxy cleanup by it, under a
clock faked with libfaketime (the server has no clock of its own to override)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import urllib3

from core_helpers import STOWAGE, ServeProcess
from stowage.downloads import DownloadTracker
from stowage.testing import ADMIN_PASSWORD
from stowage.testing.harness import basic_auth

V1 = "/service/rest/v1"
DAY = 86400


def test_downloads_are_written_in_batches_once_per_interval(stowage_factory, live_server_factory):
    ts = stowage_factory(last_downloaded_flush_seconds=3600)  # flushed by hand below
    ts.create_repository(name="files", format="raw", type="hosted")
    live = live_server_factory(ts)
    urllib3.request("PUT", f"{live.url}/repository/files/a.txt", body=b"a", headers=ts.admin)
    assets = urllib3.request("GET", f"{live.url}{V1}/assets?repository=files", headers=ts.admin).json()["items"]
    assert assets[0]["lastDownloaded"] is None and assets[0]["blobCreated"].endswith("+00:00")
    tracker = DownloadTracker.of(ts.stowage)
    for _ in range(20):
        assert urllib3.request("GET", f"{live.url}/repository/files/a.txt").status == 200
    etag = urllib3.request("GET", f"{live.url}/repository/files/a.txt").headers["ETag"]
    assert urllib3.request("HEAD", f"{live.url}/repository/files/a.txt").status == 200
    assert urllib3.request("GET", f"{live.url}/repository/files/a.txt", headers={"If-None-Match": etag}).status == 304
    assert ts.stowage.catalog.get_asset("files", "a.txt").last_downloaded is None  # nothing on the request path
    assert tracker.flush() == 1  # twenty downloads, one write
    first = ts.stowage.catalog.get_asset("files", "a.txt").last_downloaded
    assert first is not None and abs(first - time.time()) < 5
    for _ in range(5):
        urllib3.request("GET", f"{live.url}/repository/files/a.txt")
    assert tracker.flush() == 0  # within the interval: no write at all
    assert ts.stowage.catalog.get_asset("files", "a.txt").last_downloaded == first
    item = urllib3.request("GET", f"{live.url}{V1}/assets?repository=files", headers=ts.admin).json()["items"][0]
    assert item["lastDownloaded"].startswith(time.strftime("%Y-%m-%dT", time.gmtime(first)))


def test_several_processes_write_an_asset_once_per_interval(stowage_factory, tmp_path):
    nodes = [stowage_factory(data_dir=tmp_path / "shared", last_downloaded_flush_seconds=3600) for _ in range(3)]
    nodes[0].create_repository(name="files", format="raw", type="hosted")
    repository = nodes[0].stowage.repository("files")
    import io

    repository.store("a.txt", io.BytesIO(b"a"), length=1)
    asset = nodes[0].stowage.catalog.get_asset("files", "a.txt")
    trackers = [DownloadTracker.of(node.stowage) for node in nodes]
    for tracker in trackers:  # each node served the asset it read before anyone wrote
        tracker.downloaded(asset)
    assert sum(tracker.flush() for tracker in trackers) == 1


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("faketime") is None, reason="faketime (libfaketime) is not installed")
def test_proxy_cleanup_by_last_downloaded_under_a_faked_clock(tmp_path: Path, fault_upstream):
    fault_upstream.put("tools/old.bin", b"old" * 1000)
    fault_upstream.put("tools/used.bin", b"used" * 1000)
    config = tmp_path / "stowage.toml"
    config.write_text(f"""
[server]
lastDownloadedFlushSeconds = 0.2

[[cleanupPolicies]]
name = "unused-30-days"
format = "raw"
criteriaLastDownloaded = 30

[[repositories]]
name = "raw-proxy"
format = "raw"
type = "proxy"
proxy = {{ remoteUrl = "{fault_upstream.url}/" }}
cleanup = {{ policyNames = ["unused-30-days"] }}
""")
    data = tmp_path / "data"

    def serve(days: int) -> ServeProcess:
        program = tmp_path / f"stowage-plus-{days}d"
        program.write_text(f'#!/bin/sh\nexec faketime -f "+{days}d" {STOWAGE} "$@"\n')
        program.chmod(0o755)
        # Only the wall clock moves: a faked monotonic clock stalls timed waits (the batch flush thread).
        return ServeProcess(config, data, stowage=str(program),
                            env={"FAKETIME_DONT_FAKE_MONOTONIC": "1"}).start()

    def get(server: ServeProcess, name: str) -> bytes:
        answer = urllib3.request("GET", f"{server.url}/repository/raw-proxy/tools/{name}")
        assert answer.status == 200
        return answer.data

    def assets(server: ServeProcess) -> dict[str, dict]:
        items = urllib3.request("GET", f"{server.url}{V1}/assets?repository=raw-proxy",
                                headers=basic_auth("admin", ADMIN_PASSWORD)).json()["items"]
        return {item["path"]: item for item in items}

    server = serve(0)
    for name in ("old.bin", "used.bin", "old.bin", "used.bin"):  # a miss (cached now), then a hit
        get(server, name)
    time.sleep(0.6)
    assert all(item["lastDownloaded"] for item in assets(server).values())
    server.stop()

    server = serve(20)  # twenty days later, one of them is used again
    get(server, "used.bin")
    time.sleep(0.6)
    server.stop()

    server = serve(40)
    try:
        admin = basic_auth("admin", ADMIN_PASSWORD)
        preview = urllib3.request("POST", f"{server.url}{V1}/cleanup-policies/preview", headers=admin, json={
            "name": "p", "format": "raw", "criteriaLastDownloaded": 30, "repository": "raw-proxy"}).json()
        assert [item["name"] for item in preview["items"]] == ["tools/old.bin"]
        assert urllib3.request("POST", f"{server.url}{V1}/tasks/repository.cleanup/run", headers=admin).status == 204
        deadline = time.monotonic() + 30
        while True:
            task = urllib3.request("GET", f"{server.url}{V1}/tasks/repository.cleanup", headers=admin).json()
            if task["currentState"] == "WAITING" and task["lastRunResult"]:
                break
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert task["lastRunResult"] == "OK" and task["message"].startswith("removed 1 of 1"), task
        remaining = assets(server)
        assert list(remaining) == ["tools/used.bin"]
        used_on = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 20 * DAY))
        assert remaining["tools/used.bin"]["lastDownloaded"].startswith(used_on)
        fetched = fault_upstream.count("/tools/old.bin")
        assert get(server, "old.bin") == b"old" * 1000  # fetched again from the remote
        assert fault_upstream.count("/tools/old.bin") == fetched + 1
    finally:
        server.stop()
