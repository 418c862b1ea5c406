"""``stowage backup`` / ``restore``: consistent while serving, incremental by blob, pruned with --keep, and
never missing a blob that blob GC (in another process) would collect meanwhile."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from stowage.backup import create
from stowage.backup.create import run_backup
from stowage.backup.layout import BackupDirectory
from stowage.backup.restore import run_restore
from stowage.errors import ConfigurationError

RAW = [{"name": "raw-hosted", "format": "raw", "type": "hosted", "storage": {"writePolicy": "ALLOW"}}]


def put(ts, path: str, data: bytes) -> None:
    response = ts.client.simulate_put(f"/repository/raw-hosted/{path}", body=data, headers=ts.admin)
    assert response.status_code == 201, response.text


def tree_bytes(root: Path) -> int:
    """Bytes of distinct inodes under ``root`` (what the backup really occupies)."""
    seen, total = set(), 0
    for path in root.rglob("*"):
        if path.is_file():
            stat = path.stat()
            if stat.st_ino not in seen:
                seen.add(stat.st_ino)
                total += stat.st_size
    return total


def test_restore_serves_exactly_the_backed_up_state_and_refuses_a_used_directory(stowage_factory, tmp_path):
    ts = stowage_factory(repositories=RAW)
    files = {f"dir/f{i}.bin": os.urandom(20_000 + i) for i in range(5)}
    for path, data in files.items():
        put(ts, path, data)
    secret = "k" * 48  # a usable signing key: restore starts a Stowage on it
    (ts.stowage.settings.data_path / "secret.key").write_text(secret)
    os.chmod(ts.stowage.settings.data_path / "secret.key", 0o644)
    report = run_backup(ts.stowage, tmp_path / "backup")
    assert report.ok and report.blobs == 5 and report.assets == 5
    put(ts, "dir/after.bin", b"written after the backup")

    generation = BackupDirectory(tmp_path / "backup").generation_dir(report.generation)
    manifest = json.loads((generation / "manifest.json").read_text())
    assert manifest["counts"]["assets"] == 5 and manifest["bytes"]["referenced"] == sum(map(len, files.values()))
    assert manifest["versions"]["stowage"] and manifest["versions"]["plugins"]["raw"]
    assert (generation / "files" / "secret.key").stat().st_mode & 0o777 == 0o600
    assert (generation / "catalog.sqlite").stat().st_mode & 0o777 == 0o600
    assert generation.stat().st_mode & 0o777 == 0o700
    assert {p["name"] for p in json.loads((generation / "plugins.json").read_text())["plugins"]} >= {"raw"}

    restored = tmp_path / "restored"
    result = run_restore(tmp_path / "backup", restored)
    assert result.blobs == 5 and not result.warnings
    assert (restored / "secret.key").read_text() == secret
    assert (restored / "secret.key").stat().st_mode & 0o777 == 0o600
    assert restored.stat().st_mode & 0o777 == 0o700
    again = stowage_factory(data_dir=restored)
    for path, data in files.items():
        assert again.client.simulate_get(f"/repository/raw-hosted/{path}").content == data
    assert again.client.simulate_get("/repository/raw-hosted/dir/after.bin").status_code == 404
    listing = sorted(a.path for a in again.stowage.catalog.iter_assets("raw-hosted"))
    assert listing == sorted(files)

    with pytest.raises(ConfigurationError, match="not empty"):
        run_restore(tmp_path / "backup", restored)


def test_a_damaged_catalog_copy_is_refused(stowage_factory, tmp_path):
    ts = stowage_factory(repositories=RAW)
    put(ts, "a.bin", b"a")
    report = run_backup(ts.stowage, tmp_path / "backup")
    catalog = BackupDirectory(tmp_path / "backup").generation_dir(report.generation) / "catalog.sqlite"
    with open(catalog, "r+b") as handle:
        handle.seek(200)
        handle.write(b"\xff")
    with pytest.raises(ConfigurationError, match="damaged"):
        run_restore(tmp_path / "backup", tmp_path / "restored")
    assert not (tmp_path / "restored").exists()


def test_a_second_backup_copies_only_new_blobs_and_restores_the_newer_state(stowage_factory, tmp_path):
    ts = stowage_factory(repositories=RAW)
    first = {f"old/{i}.bin": os.urandom(200_000) for i in range(10)}
    for path, data in first.items():
        put(ts, path, data)
    backup = tmp_path / "backup"
    one = run_backup(ts.stowage, backup, link=False)
    assert one.copied == 10 and one.copied_bytes == 2_000_000
    before = tree_bytes(backup / "blobs")

    new = {"new/a.bin": os.urandom(300_000), "new/b.bin": os.urandom(100_000)}
    for path, data in new.items():
        put(ts, path, data)
    two = run_backup(ts.stowage, backup, link=False)
    assert (two.copied, two.copied_bytes, two.present) == (2, 400_000, 10)
    assert tree_bytes(backup / "blobs") - before == 400_000  # measured on disk: only the new content
    assert BackupDirectory(backup).generations() == [one.generation, two.generation]

    restored = stowage_factory(data_dir=run_restore(backup, tmp_path / "newest").data_dir)
    for path, data in {**first, **new}.items():
        assert restored.client.simulate_get(f"/repository/raw-hosted/{path}").content == data
    older = stowage_factory(data_dir=run_restore(backup, tmp_path / "older", generation=one.generation).data_dir)
    assert older.client.simulate_get("/repository/raw-hosted/new/a.bin").status_code == 404


def test_hard_links_on_the_same_file_system(stowage_factory, tmp_path):
    ts = stowage_factory(repositories=RAW)
    put(ts, "a.bin", os.urandom(10_000))
    report = run_backup(ts.stowage, tmp_path / "backup")
    assert (report.linked, report.copied) == (1, 0)
    sha = ts.stowage.catalog.get_asset("raw-hosted", "a.bin").blob_sha256
    original = ts.stowage.blob_store("default").path_for(sha)
    assert (tmp_path / "backup" / "blobs" / sha[:2] / sha[2:4] / sha).stat().st_ino == original.stat().st_ino


def test_keep_prunes_generations_and_frees_only_their_blobs(stowage_factory, tmp_path):
    ts = stowage_factory(repositories=RAW)
    put(ts, "kept.bin", b"kept by every generation")
    put(ts, "gone.bin", b"only in the first generation")
    backup = tmp_path / "backup"
    first = run_backup(ts.stowage, backup, link=False)
    ts.client.simulate_delete("/repository/raw-hosted/gone.bin", headers=ts.admin)
    put(ts, "second.bin", b"from the second generation on")
    run_backup(ts.stowage, backup, link=False)
    third = run_backup(ts.stowage, backup, link=False, keep=2)
    directory = BackupDirectory(backup)
    assert first.generation not in directory.generations() and len(directory.generations()) == 2
    assert third.pruned == [first.generation] and third.freed_blobs == 1
    assert third.freed_bytes == len(b"only in the first generation")
    assert len(list(directory.blob_digests())) == 2


def _gc_in_another_process(data_dir: Path) -> str:
    code = ("import sys; from stowage.app import open_for_maintenance; from stowage.compaction import compact_blobs;"
            "s = open_for_maintenance(None, overrides={'data_dir': sys.argv[1]});"
            "print(compact_blobs(s, 0).summary()); s.close()")
    return subprocess.run([sys.executable, "-c", code, str(data_dir)], check=True, capture_output=True,
                          text=True, timeout=60).stdout


@pytest.mark.parametrize("pinned", [True, False])
def test_blob_gc_during_a_backup_does_not_make_it_miss_a_blob(stowage_factory, tmp_path, monkeypatch, pinned):
    """Between the snapshot and the copy, the asset is deleted and GC (grace 0) runs in another process.

    Unpinned is the control: it shows the race is real, so the pinned run's success means something.
    """
    ts = stowage_factory(repositories=RAW)
    data = os.urandom(50_000)
    put(ts, "victim.bin", data)
    sha = ts.stowage.catalog.get_asset("raw-hosted", "victim.bin").blob_sha256
    outputs = []
    real = create.referenced_blobs

    def snapshot_then_race(catalog_file):
        blobs = real(catalog_file)
        ts.client.simulate_delete("/repository/raw-hosted/victim.bin", headers=ts.admin)
        outputs.append(_gc_in_another_process(ts.stowage.settings.data_path))
        return blobs

    monkeypatch.setattr(create, "referenced_blobs", snapshot_then_race)
    if not pinned:
        monkeypatch.setattr(create.BlobPin, "__enter__", lambda self: self)
        monkeypatch.setattr(create.BlobPin, "__exit__", lambda self, *exc: None)
    report = run_backup(ts.stowage, tmp_path / "backup", link=False)
    copy = BackupDirectory(tmp_path / "backup").blob_path(sha)
    if pinned:
        assert report.ok and copy.read_bytes() == data
        assert outputs == ["deleted 0 unreferenced blob(s) (0 bytes), 0 of them unrecorded; kept 1 re-used meanwhile\n"]
        # once the backup is over, the same GC collects it: the pin only held it for the backup
        assert _gc_in_another_process(ts.stowage.settings.data_path).startswith("deleted 1 ")
    else:
        assert outputs[0].startswith("deleted 1 ")
        assert not report.ok and "missing" in report.problems[0] and not copy.exists()


def test_backups_into_one_directory_take_turns(stowage_factory, tmp_path):
    ts = stowage_factory(repositories=RAW)
    put(ts, "a.bin", b"a")
    directory = BackupDirectory(tmp_path / "backup")
    with directory.locked():
        with pytest.raises(ConfigurationError, match="in use"):
            run_backup(ts.stowage, tmp_path / "backup")


def test_backup_while_uploads_and_downloads_go_on(stowage_factory, live_server_factory, tmp_path):
    """A backup taken during a busy upload/download loop restores a consistent state: everything uploaded
    before it started, nothing that started after it ended, every listed file byte-identical."""
    import urllib3

    ts = stowage_factory(repositories=RAW)
    live = live_server_factory(ts)
    http = urllib3.PoolManager()
    uploaded: dict[str, bytes] = {}
    stop = threading.Event()
    errors: list[str] = []

    def loop() -> None:
        i = 0
        while not stop.is_set():
            path, data = f"loop/{i}.bin", os.urandom(30_000)
            response = http.request("PUT", f"{live.url}/repository/raw-hosted/{path}", body=data, headers=ts.admin)
            if response.status != 201:
                errors.append(f"PUT {path}: {response.status}")
            uploaded[path] = data
            got = http.request("GET", f"{live.url}/repository/raw-hosted/loop/0.bin")
            if got.status != 200:
                errors.append(f"GET: {got.status}")
            i += 1

    worker = threading.Thread(target=loop)
    worker.start()
    while len(uploaded) < 20:
        threading.Event().wait(0.02)
    before = dict(uploaded)
    result = subprocess.run([str(Path(sys.executable).with_name("stowage")), "backup", "--data-dir",
                             str(ts.stowage.settings.data_path), "--to", str(tmp_path / "backup"), "--quiet"],
                            capture_output=True, text=True, timeout=120)
    during = dict(uploaded)
    while len(uploaded) < len(during) + 5:
        threading.Event().wait(0.02)
    stop.set()
    worker.join()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("generation ") and not errors

    restored = stowage_factory(data_dir=run_restore(tmp_path / "backup", tmp_path / "restored").data_dir)
    listed = {a.path for a in restored.stowage.catalog.iter_assets("raw-hosted")}
    assert set(before) <= listed <= set(during)
    for path in listed:
        assert restored.client.simulate_get(f"/repository/raw-hosted/{path}").content == during[path]


def test_restore_refuses_to_share_a_blob_store_outside_the_data_directory(stowage_factory, tmp_path):
    """A store at an absolute path that still holds the original server's blobs must not be shared by the
    restored server (either one's GC would delete the other's blobs): restore refuses and leaves nothing."""
    shared = tmp_path / "shared-store"
    ts = stowage_factory(data_dir=tmp_path / "live")
    ts.client.simulate_post("/service/rest/v1/blobstores/file", json={"name": "outside", "path": str(shared)},
                            headers=ts.admin)
    ts.create_repository(name="raw-outside", format="raw", type="hosted", storage={"blobStoreName": "outside"})
    assert ts.client.simulate_put("/repository/raw-outside/a.bin", body=b"outside", headers=ts.admin).status_code == 201
    run_backup(ts.stowage, tmp_path / "backup")
    with pytest.raises(ConfigurationError, match="outside .* already holds blobs"):
        run_restore(tmp_path / "backup", tmp_path / "restored")
    assert list((tmp_path / "restored").iterdir()) == []

    # once the old store is gone (the disaster case), the same restore puts the blobs back where they were
    import shutil

    shutil.rmtree(shared)
    report = run_restore(tmp_path / "backup", tmp_path / "restored")
    assert any("outside the data directory" in w for w in report.warnings)
    again = stowage_factory(data_dir=tmp_path / "restored")
    assert again.client.simulate_get("/repository/raw-outside/a.bin").content == b"outside"
