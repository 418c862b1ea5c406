"""The file blob store writes a large blob from a second thread (``_WriteBehind``): the request thread
keeps receiving and hashing while a write waits on the disk. What must not change: every byte counted is
readable by a check or a tail reader when it looks, a write error reaches the request (a full disk is still
a 507 with nothing stored), and an abort leaves no temp file and no thread.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from pathlib import Path

import pytest

from stowage.blobstore.base import BlobStoreConfig
from stowage.blobstore.file import WRITE_BEHIND_BYTES, FileBlobStore
from stowage.testing import build_stowage

MIB = 1024 * 1024


def chunks(count: int, seed: int = 0) -> list[bytes]:
    return [hashlib.sha256(f"{seed}-{i}".encode()).digest() * (MIB // 32) for i in range(count)]


def write_behind_threads() -> int:
    return sum(thread.name == "blob-write" for thread in threading.enumerate())


@pytest.fixture
def store(tmp_path: Path) -> FileBlobStore:
    return FileBlobStore(BlobStoreConfig(name="wb"), tmp_path / "store")


def test_a_large_blob_is_written_behind_and_every_counted_byte_is_readable_when_asked(store):
    parts = chunks(WRITE_BEHIND_BYTES // MIB + 12)
    with store.writer() as writer:
        for index, part in enumerate(parts):
            writer.write(part)
            if index == len(parts) - 4:
                assert write_behind_threads() == 1  # past the threshold: the thread is writing
                # a check (staging) reads the file by name: everything written so far is in it
                assert os.path.getsize(writer.partial_path()) == writer.size
        info = writer.commit(expected_size=len(parts) * MIB)
    data = b"".join(parts)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    with store.open(info.sha256) as handle:
        assert handle.read() == data
    assert write_behind_threads() == 0
    assert not list(store.tmp_dir.iterdir())


def test_a_tail_reader_switches_the_writer_to_in_order_writes(store):
    parts = chunks(WRITE_BEHIND_BYTES // MIB + 8, seed=1)
    with store.writer() as writer:
        for part in parts[:-4]:
            writer.write(part)
        handle = writer.open_partial()  # a proxy flight's reader: it reads up to ``size`` as it grows
        assert write_behind_threads() == 0
        for part in parts[-4:]:
            writer.write(part)
            assert os.fstat(handle.fileno()).st_size == writer.size
        assert handle.read() == b"".join(parts)
        handle.close()
        writer.commit()


def test_an_abort_while_chunks_are_queued_leaves_no_file_and_no_thread(store):
    writer = store.writer()
    for part in chunks(WRITE_BEHIND_BYTES // MIB + 8, seed=2):
        writer.write(part)
    writer.abort()
    assert write_behind_threads() == 0
    assert not list(store.tmp_dir.iterdir())


def test_a_disk_that_fills_during_a_written_behind_upload_is_a_507_and_stores_nothing(small_disk, monkeypatch):
    monkeypatch.setenv("STOWAGE_ADMIN_PASSWORD", "admin123")
    ts = build_stowage(small_disk / "data", repositories=[dict(name="raw-h", format="raw", type="hosted")])
    body = b"".join(chunks(40, seed=3))  # 40 MiB into a 24 MiB disk: the write thread meets ENOSPC
    response = ts.client.simulate_put("/repository/raw-h/big.bin", body=body, headers=ts.admin)
    assert response.status_code == 507, response.text
    assert ts.client.simulate_get("/repository/raw-h/big.bin").status_code == 404
    store_root = small_disk / "data"
    assert not [path for path in store_root.rglob("upload-*")]
    # no blob file either (a swallowed write error would publish a truncated one)
    assert not [path for path in store_root.rglob("*") if len(path.name) == 64 and path.is_file()]
    assert write_behind_threads() == 0
    # the space is free again: a small upload works
    assert ts.client.simulate_put("/repository/raw-h/small.txt", body=b"hi", headers=ts.admin).status_code == 201


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range is Linux's")
def test_the_write_thread_can_start_write_back_early(tmp_path):
    # Without the libc binding the write thread silently leaves all write-out to the commit's fsync.
    from stowage.blobstore.file import _START_WRITE_BACK, _SYNC_FILE_RANGE_WRITE

    assert _START_WRITE_BACK is not None
    with open(tmp_path / "f", "wb") as handle:
        handle.write(b"x" * MIB)
        handle.flush()
        assert _START_WRITE_BACK(handle.fileno(), 0, MIB, _SYNC_FILE_RANGE_WRITE) == 0
