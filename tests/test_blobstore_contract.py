"""The BlobStore contract, run against every built-in store: the file store and the S3 store (moto on
loopback, or the S3 server ``STOWAGE_TEST_S3_ENDPOINT`` names)."""

from __future__ import annotations

import hashlib
import io
import os
import time
from typing import Any

import pytest

from stowage.blobstore import BlobStore, BlobStoreConfig, FileBlobStore
from stowage.errors import DigestMismatch, InvalidContent, NotFound

MIB = 1024 * 1024
PART = 5 * MIB  # the smallest S3 part, so that multipart paths run with little data


def data_of(size: int, seed: int = 0) -> bytes:
    return hashlib.shake_256(f"{seed}".encode()).digest(size) if size else b""


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Leftovers:
    """Whatever a store keeps besides its blobs (temp files, temp objects, open multipart uploads)."""

    def __init__(self, kind: str, store: BlobStore, s3: Any = None, bucket: str = ""):
        self.kind, self.store, self.s3, self.bucket = kind, store, s3, bucket

    def __call__(self) -> list[str]:
        if self.kind == "file":
            return sorted(p.name for p in self.store.tmp_dir.iterdir())  # type: ignore[attr-defined]
        return self.s3.keys(self.bucket, "pfx/tmp/") + self.s3.multipart_uploads(self.bucket)


@pytest.fixture(params=["file", "s3"])
def kind(request) -> str:
    return request.param


@pytest.fixture
def make_store(kind, tmp_path, request):
    """A factory: each call opens the same store again, as another worker or node would."""
    if kind == "file":
        def factory() -> BlobStore:
            return FileBlobStore(BlobStoreConfig(name="contract"), tmp_path / "store")
        factory.leftovers = lambda store: Leftovers("file", store)
        return factory
    s3 = request.getfixturevalue("s3_server")
    bucket = request.getfixturevalue("s3_bucket")
    from stowage.blobstore.s3 import S3BlobStore

    config = BlobStoreConfig(name="contract", type="S3", attributes={
        "bucketConfiguration": s3.bucket_configuration(bucket, prefix="pfx", multipartPartSize=PART)})

    def factory() -> BlobStore:
        return S3BlobStore(config, spool_dir=tmp_path / "spool")
    factory.leftovers = lambda store: Leftovers("s3", store, s3, bucket)
    return factory


@pytest.fixture
def store(make_store) -> BlobStore:
    return make_store()


@pytest.mark.parametrize("size", [0, 1000, PART + 3 * MIB + 17])
def test_a_committed_blob_reads_back_whole_with_its_digests(store, make_store, size):
    data = data_of(size, seed=size)
    with store.writer(("sha512", "sha1")) as writer:
        for start in range(0, size, 1_000_003):
            writer.write(data[start:start + 1_000_003])
        info = writer.commit(expected_size=size, expected={"sha256": sha(data)})
    assert info.sha256 == sha(data) and info.size == size
    assert info.digests["sha512"] == hashlib.sha512(data).hexdigest()
    assert info.digests["sha1"] == hashlib.sha1(data).hexdigest()
    assert store.exists(info.sha256)
    with store.open(info.sha256) as handle:
        assert handle.read() == data
    assert list(store.digests()) == [info.sha256]
    assert make_store.leftovers(store)() == []


def test_nothing_is_visible_before_commit_and_an_abort_leaves_nothing(store, make_store):
    data = data_of(PART + MIB, seed=1)
    with store.writer() as writer:
        writer.write(data)
        assert not store.exists(sha(data))
        assert list(store.digests()) == []
    assert not store.exists(sha(data))
    assert make_store.leftovers(store)() == []


@pytest.mark.parametrize("size", [10, PART + 1])
def test_a_wrong_digest_or_size_stores_nothing(store, make_store, size):
    data = data_of(size, seed=2)
    with pytest.raises(DigestMismatch):
        with store.writer() as writer:
            writer.write(data)
            writer.commit(expected={"sha256": "0" * 64})
    with pytest.raises(InvalidContent):
        with store.writer() as writer:
            writer.write(data)
            writer.commit(expected_size=size + 1)
    assert list(store.digests()) == []
    assert make_store.leftovers(store)() == []


def test_same_bytes_twice_are_one_blob(store, make_store):
    data = data_of(PART + 10, seed=3)
    first = store.store(io.BytesIO(data))
    second = make_store().store(io.BytesIO(data), length=len(data))
    assert first.sha256 == second.sha256
    assert list(store.digests()) == [first.sha256]
    assert make_store.leftovers(store)() == []


def test_open_seeks_and_reads_ranges(store):
    data = data_of(3 * MIB, seed=4)
    info = store.store(io.BytesIO(data))
    with store.open(info.sha256) as handle:
        assert handle.seekable()
        handle.seek(MIB + 5)
        assert handle.read(10) == data[MIB + 5:MIB + 15]
        handle.seek(0, os.SEEK_END)
        assert handle.tell() == len(data)
        assert handle.read(5) == b""
        handle.seek(-7, os.SEEK_END)
        assert handle.read() == data[-7:]
        handle.seek(3)
        assert handle.read(4) == data[3:7]
    for missing in ("0" * 64, "../etc/passwd", "A" * 64):
        with pytest.raises(NotFound):
            store.open(missing)
        assert not store.exists(missing)


def test_a_resumable_upload_continues_on_another_instance_and_checks_digests(store, make_store):
    chunks = [data_of(MIB, 10), data_of(PART + 2 * MIB, 11), data_of(100, 12), data_of(0, 13), data_of(3 * MIB, 14)]
    data = b"".join(chunks)
    upload_id = "abc_DEF-123"
    assert store.resumable(upload_id).size() is None
    expected_size = 0
    for n, chunk in enumerate(chunks):
        node = make_store() if n % 2 else store  # every other request on another "node"
        expected_size += len(chunk)
        assert node.resumable(upload_id).append(io.BytesIO(chunk), len(chunk)) == expected_size
        assert make_store().resumable(upload_id).size() == expected_size
    other = make_store()  # has seen no byte of it: digests are read back
    info = other.resumable(upload_id).commit(extra_digests=("sha512",), expected={
        "sha256": sha(data), "sha512": hashlib.sha512(data).hexdigest()})
    assert info.sha256 == sha(data) and info.size == len(data)
    with store.open(info.sha256) as handle:
        assert handle.read() == data
    assert store.resumable(upload_id).size() is None
    assert make_store.leftovers(store)() == []


def test_a_resumable_upload_with_a_wrong_digest_is_discarded(store, make_store):
    upload = store.resumable("wrong")
    upload.append(io.BytesIO(data_of(PART + 5, 20)))
    with pytest.raises(DigestMismatch):
        upload.commit(expected={"sha256": "1" * 64})
    assert upload.size() is None and list(store.digests()) == []
    assert make_store.leftovers(store)() == []
    empty = store.resumable("empty")
    assert empty.append(io.BytesIO(b""), 0) == 0
    assert empty.commit(expected={"sha256": sha(b"")}).size == 0
    discarded = store.resumable("gone")
    discarded.append(io.BytesIO(data_of(PART + 1, 21)))
    discarded.discard()
    discarded.discard()
    assert discarded.size() is None
    assert make_store.leftovers(store)() == []
    for hostile in ("../x", "a/b", "", "x" * 200):
        with pytest.raises(NotFound):
            store.resumable(hostile)


def test_collect_keeps_recently_written_or_reused_blobs(store, make_store):
    old = store.store(io.BytesIO(b"old bytes"))
    assert not store.collect(old.sha256, time.time() - 3600)  # written just now
    assert store.exists(old.sha256)
    assert store.collect(old.sha256, time.time() + 1)
    assert not store.exists(old.sha256) and list(store.digests()) == []
    again = store.store(io.BytesIO(b"reused"))
    cutoff = time.time() + 1
    time.sleep(1.1)
    make_store().store(io.BytesIO(b"reused"))  # a writer re-uses the digest after the cutoff
    assert not store.collect(again.sha256, cutoff)
    assert store.exists(again.sha256)
    assert store.collect("f" * 64, time.time())  # absent: nothing to do
    assert make_store.leftovers(store)() == []


@pytest.mark.parametrize("kind", ["s3"])  # S3 only
def test_s3_collect_loses_no_race_with_a_writer_reusing_the_digest(kind, store, make_store):
    """The writer checks the blob exists after the collector set it aside, before it deletes it."""
    data = data_of(PART + 1, 30)
    info = store.store(io.BytesIO(data))
    cutoff = time.time() + 1
    time.sleep(1.1)
    copy = store.copy
    writer_store = make_store()

    def copy_then_writer_reuses(source, target, metadata=None):
        copy(source, target, metadata)
        if "/collect-" in target:
            writer_store.store(io.BytesIO(data))  # sees the blob, marks it, keeps it

    store.copy = copy_then_writer_reuses  # type: ignore[method-assign]
    assert not store.collect(info.sha256, cutoff)
    with make_store().open(info.sha256) as handle:
        assert handle.read() == data
    assert make_store.leftovers(store)() == []


def test_sweep_removes_stale_leftovers_and_restores_set_aside_blobs(kind, store, make_store):
    writer = store.writer()
    writer.write(data_of(PART + 1, 40))  # a part sent, then the process "dies"
    store.resumable("stale").append(io.BytesIO(data_of(100, 41)))
    assert store.sweep_temp_files(older_than=3600) == 0
    assert store.resumable("stale").size() == 100
    store.sweep_temp_files(older_than=-1)
    assert store.resumable("stale").size() is None
    if kind == "s3":
        assert make_store.leftovers(store)() == []
        info = store.store(io.BytesIO(b"aside"))
        aside = store.key(f"tmp/collect-{info.sha256}-0000")
        store.copy(store.blob_key(info.sha256), aside)
        store.delete(info.sha256)
        store.sweep_temp_files(older_than=-1)
        assert store.exists(info.sha256) is False  # a collector may still be deciding: left alone
        import stowage.blobstore.s3.store as s3_store
        s3_store.COLLECT_DECISION_SECONDS, saved = -1, s3_store.COLLECT_DECISION_SECONDS
        try:
            store.sweep_temp_files(older_than=-1)
        finally:
            s3_store.COLLECT_DECISION_SECONDS = saved
        assert store.exists(info.sha256)
        assert make_store.leftovers(store)() == []


@pytest.mark.parametrize("kind", ["s3"])  # S3 only
def test_an_unreachable_bucket_is_a_503_naming_the_cause(kind, tmp_path, s3_server):
    from stowage.blobstore.s3 import S3BlobStore
    from stowage.blobstore.s3.store import S3Error

    configuration = s3_server.bucket_configuration("nowhere")
    configuration["advancedBucketConnection"] = {"endpoint": "http://127.0.0.1:9", "forcePathStyle": True}
    store = S3BlobStore(BlobStoreConfig(name="down", type="S3", attributes={"bucketConfiguration": configuration}),
                        spool_dir=tmp_path)
    with pytest.raises(S3Error) as raised:
        store.open("a" * 64)
    assert raised.value.status == 503 and "127.0.0.1:9" in raised.value.message
    with pytest.raises(S3Error):
        store.store(io.BytesIO(b"x"))


@pytest.mark.parametrize("kind", ["s3"])  # S3 only
def test_an_assumed_role_gives_the_store_its_credentials(kind, tmp_path, s3_server, s3_bucket):
    """``bucketSecurity.role``: credentials come from STS AssumeRole (on the endpoint, as MinIO does)."""
    if "STOWAGE_TEST_S3_ENDPOINT" in os.environ:
        pytest.skip("needs an STS role on the server; moto accepts any")
    from stowage.blobstore.s3 import S3BlobStore

    configuration = s3_server.bucket_configuration(s3_bucket)
    configuration["bucketSecurity"]["role"] = "arn:aws:iam::123456789012:role/stowage"
    store = S3BlobStore(BlobStoreConfig(name="role", type="S3", attributes={"bucketConfiguration": configuration}),
                        spool_dir=tmp_path)
    info = store.store(io.BytesIO(b"through a role"))
    with store.open(info.sha256) as handle:
        assert handle.read() == b"through a role"
    credentials = store.client._request_signer._credentials.get_frozen_credentials()
    assert credentials.access_key != s3_server.access_key and credentials.token  # the role's, not the key's


@pytest.mark.parametrize("kind", ["s3"])  # S3 only
def test_parts_replaced_by_a_concurrent_append_are_a_400_and_store_nothing(kind, store, make_store):
    """Two PATCHes at the same offset from a hostile client: the parts no longer match the state."""
    upload = store.resumable("racy")
    upload.append(io.BytesIO(data_of(PART + 1, 50)))
    state = upload._load()
    other = make_store()
    # the other request's part 1 lands after this one's state was written
    other.client.upload_part(Bucket=other.bucket, Key=other.key("tmp/resumable-racy/data"),
                             UploadId=state["multipartUploadId"], PartNumber=1, Body=data_of(PART + 2, 51))
    from stowage.errors import BadRequest
    with pytest.raises(BadRequest):
        upload.commit(expected={"sha256": sha(data_of(PART + 1, 50))})
    assert upload.size() is None and list(store.digests()) == []
    assert make_store.leftovers(store)() == []


def test_local_path_is_a_readable_copy_of_the_blob_or_none(store):
    """What yum hands to createrepo_c and worker processes: a local file with the blob's bytes, or None
    (object stores, or a blob the store does not hold), never a path to a missing file."""
    data = data_of(3000, seed=7)
    blob = store.store(io.BytesIO(data))
    path = store.local_path(blob.sha256)
    assert path is None or open(path, "rb").read() == data
    assert store.local_path(sha(b"never stored")) is None
