"""``stowage verify`` from the command line, and the ``stowage.backup`` / ``blobstore.verify`` tasks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import urllib3

from stowage.backup.layout import BackupDirectory
from stowage.verify import run_verify

STOWAGE = str(Path(sys.executable).with_name("stowage"))
RAW = [{"name": "raw-hosted", "format": "raw", "type": "hosted"},
       {"name": "raw-other", "format": "raw", "type": "hosted", "storage": {"blobStoreName": "other"}}]
V1 = "/service/rest/v1"


def app(stowage_factory):
    ts = stowage_factory()
    ts.client.simulate_post(f"{V1}/blobstores/file", json={"name": "other", "path": "other"}, headers=ts.admin)
    for config in RAW:
        ts.create_repository(**config)
    return ts


def put(ts, repository: str, path: str, data: bytes) -> None:
    assert ts.client.simulate_put(f"/repository/{repository}/{path}", body=data, headers=ts.admin).status_code == 201


def verify_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([STOWAGE, "verify", "--data-dir", str(data_dir), "--quiet", *args], capture_output=True,
                          text=True, timeout=120)


def test_exit_status_and_report_lines(stowage_factory):
    ts = app(stowage_factory)
    put(ts, "raw-hosted", "a/one.bin", os.urandom(1000))
    put(ts, "raw-hosted", "a/two.bin", b"two")
    data_dir = ts.stowage.settings.data_path
    healthy = verify_cli(data_dir, "--deep")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert healthy.stdout.startswith("deep-verified 2 assets in 2 repositories") and "0 problem(s)" in healthy.stdout

    sha = ts.stowage.catalog.get_asset("raw-hosted", "a/two.bin").blob_sha256
    blob = ts.stowage.blob_store("default").path_for(sha)
    blob.write_bytes(b"TWO")  # same size: only --deep notices
    (ts.stowage.blob_store("default").tmp_dir / "upload-leftover").write_bytes(b"x")
    orphan = "0" * 64
    ts.stowage.blob_store("default").path_for(orphan).parent.mkdir(parents=True)
    ts.stowage.blob_store("default").path_for(orphan).write_bytes(b"orphan")
    shallow = verify_cli(data_dir)
    assert shallow.returncode == 0, shallow.stdout
    assert "1 orphan blob file(s) and 1 temporary file(s)" in shallow.stdout
    deep = verify_cli(data_dir, "--deep")
    assert deep.returncode == 1
    lines = deep.stdout.splitlines()
    assert lines[0] == (f"raw-hosted a/two.bin: blob {sha} is corrupt: its content hashes to sha256 "
                        f"{__import__('hashlib').sha256(b'TWO').hexdigest()}")
    assert "1 problem(s)" in lines[1] and len(lines) == 2

    os.unlink(ts.stowage.blob_store("default").path_for(ts.stowage.catalog.get_asset("raw-hosted", "a/one.bin").blob_sha256))
    only_other = verify_cli(data_dir, "--repository", "raw-other")
    assert only_other.returncode == 0 and "0 assets in 1 repositories" in only_other.stdout
    missing = verify_cli(data_dir, "--repository", "raw-hosted")
    assert missing.returncode == 1 and "raw-hosted a/one.bin: blob " in missing.stdout and "is missing" in missing.stdout
    unknown = verify_cli(data_dir, "--repository", "nope")
    assert unknown.returncode == 2 and "nope" in unknown.stderr


def test_verify_of_one_blob_store(stowage_factory):
    ts = app(stowage_factory)
    put(ts, "raw-hosted", "x.bin", b"x")
    put(ts, "raw-other", "y.bin", b"y")
    report = run_verify(ts.stowage, blob_store="other")
    assert (report.repositories, report.assets) == (1, 1)


def wait_done(url: str, headers: dict, task_id: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        task = urllib3.request("GET", f"{url}{V1}/tasks/{task_id}", headers=headers).json()
        if task["currentState"] == "WAITING" and task["lastRunResult"]:
            return task
        time.sleep(0.05)
    raise AssertionError(f"{task_id} did not finish")


def test_backup_and_verify_tasks(stowage_factory, live_server_factory, tmp_path):
    ts = app(stowage_factory)
    live = live_server_factory(ts)
    put(ts, "raw-other", "y.bin", b"y")
    templates = {t["type"]: t for t in urllib3.request("GET", f"{live.url}{V1}/tasks/templates",
                                                         headers=ts.admin).json()}
    assert {p["id"] for p in templates["stowage.backup"]["propertyDefinitions"]} == {"location", "keep"}
    ids = {t["id"] for t in urllib3.request("GET", f"{live.url}{V1}/tasks", headers=ts.admin).json()["items"]}
    assert "blobstore.verify" in ids and "stowage.backup" not in ids  # location is required: no default task

    refused = urllib3.request("POST", f"{live.url}{V1}/tasks", headers=ts.admin, json={
        "type": "stowage.backup", "name": "nightly", "frequency": {"schedule": "manual"}, "properties": {}})
    assert refused.status == 400 and "location" in refused.data.decode()
    created = urllib3.request("POST", f"{live.url}{V1}/tasks", headers=ts.admin, json={
        "type": "stowage.backup", "name": "nightly", "frequency": {"schedule": "manual"},
        "properties": {"location": str(tmp_path / "b"), "keep": "1"}})
    assert created.status == 201, created.data
    backup_id = created.json()["id"]
    for _ in range(2):
        assert urllib3.request("POST", f"{live.url}{V1}/tasks/{backup_id}/run", headers=ts.admin).status == 204
        task = wait_done(live.url, ts.admin, backup_id)
        assert task["lastRunResult"] == "OK" and task["message"].startswith("generation "), task
    assert len(BackupDirectory(tmp_path / "b").generations()) == 1  # keep=1 pruned the first

    verify_id = urllib3.request("POST", f"{live.url}{V1}/tasks", headers=ts.admin, json={
        "type": "blobstore.verify", "name": "verify other", "frequency": {"schedule": "manual"},
        "properties": {"blobstoreName": "other", "deep": "true"}}).json()["id"]
    urllib3.request("POST", f"{live.url}{V1}/tasks/{verify_id}/run", headers=ts.admin)
    task = wait_done(live.url, ts.admin, verify_id)
    assert task["lastRunResult"] == "OK" and task["message"].startswith("deep-verified 1 assets in 1 repositories")
    sha = ts.stowage.catalog.get_asset("raw-other", "y.bin").blob_sha256
    os.unlink(ts.stowage.blob_store("other").path_for(sha))
    urllib3.request("POST", f"{live.url}{V1}/tasks/{verify_id}/run", headers=ts.admin)
    task = wait_done(live.url, ts.admin, verify_id)
    assert task["lastRunResult"] == "FAILED" and "raw-other y.bin: blob" in task["message"]


def test_uploads_go_on_while_a_verify_runs(stowage_factory, live_server_factory, monkeypatch):
    """Verify reads a snapshot: halfway through its blob checks, an upload through the live server commits
    at once (no lock is held for the run), and the finished report is about the snapshot."""
    import threading

    from stowage import verify as verify_module

    ts = app(stowage_factory)
    live = live_server_factory(ts)
    for i in range(4):
        put(ts, "raw-hosted", f"before/{i}.bin", os.urandom(1000))
    halfway, release = threading.Event(), threading.Event()
    real = verify_module._blob_problem

    def slow(store, sha256, size, *, deep):
        halfway.set()
        release.wait(30)
        return real(store, sha256, size, deep=deep)

    monkeypatch.setattr(verify_module, "_blob_problem", slow)
    result = {}
    runner = threading.Thread(target=lambda: result.setdefault("report", run_verify(ts.stowage, deep=True)))
    runner.start()
    try:
        assert halfway.wait(30)
        started = time.monotonic()
        response = urllib3.request("PUT", f"{live.url}/repository/raw-hosted/during.bin", body=b"during",
                                   headers=ts.admin, timeout=10)
        assert response.status == 201 and time.monotonic() - started < 5
    finally:
        release.set()
        runner.join(60)
    report = result["report"]
    assert report.ok and report.assets == 4  # the snapshot's, not the upload made meanwhile
    assert ts.stowage.catalog.get_asset("raw-hosted", "during.bin") is not None


def test_a_backup_task_shows_progress_and_stops_between_blobs(stowage_factory, live_server_factory, tmp_path,
                                                               monkeypatch):
    from stowage.backup import create

    ts = app(stowage_factory)
    live = live_server_factory(ts)
    for i in range(40):
        put(ts, "raw-hosted", f"f/{i}.bin", os.urandom(2000))
    real = create._copy_blob

    def slow(*args, **kwargs):  # 40 blobs, 4 threads: about 5 s; a stop is seen within a second
        time.sleep(0.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(create, "_copy_blob", slow)
    task_id = urllib3.request("POST", f"{live.url}{V1}/tasks", headers=ts.admin, json={
        "type": "stowage.backup", "name": "slow", "frequency": {"schedule": "manual"},
        "properties": {"location": str(tmp_path / "b")}}).json()["id"]
    assert urllib3.request("POST", f"{live.url}{V1}/tasks/{task_id}/run", headers=ts.admin).status == 204
    deadline = time.monotonic() + 30
    while "files" not in (urllib3.request("GET", f"{live.url}{V1}/tasks/{task_id}", headers=ts.admin).json()
                          .get("message") or ""):
        assert time.monotonic() < deadline, "no progress message"
        time.sleep(0.1)
    message = urllib3.request("GET", f"{live.url}{V1}/tasks/{task_id}", headers=ts.admin).json()["message"]
    assert message.startswith("backup: ") and "/40 files" in message and "/s" in message
    assert urllib3.request("POST", f"{live.url}{V1}/tasks/{task_id}/stop", headers=ts.admin).status == 204
    task = wait_done(live.url, ts.admin, task_id)
    assert task["lastRunResult"] == "CANCELED"
    assert BackupDirectory(tmp_path / "b").generations() == []  # nothing half-written counts as a backup
    assert ts.stowage.catalog.oldest_blob_pin() is None  # and GC is not held back any more
