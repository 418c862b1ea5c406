"""A large blob is committed with its sha256; md5, sha1 and sha512 follow off the request path (``ChecksumFiller``)."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from stowage.blobstore.base import INLINE_DIGEST_BYTES
from stowage.checksums import ChecksumFiller

RAW = {"name": "raw", "format": "raw", "type": "hosted", "online": True,
       "storage": {"blobStoreName": "default", "strictContentTypeValidation": False, "writePolicy": "ALLOW"}}
ALL = ("md5", "sha1", "sha256", "sha512")


@pytest.fixture
def app(stowage_factory):
    return stowage_factory(repositories=[RAW])


def expected(body: bytes) -> dict[str, str]:
    return {name: hashlib.new(name, body).hexdigest() for name in ALL}


def test_large_blob_is_committed_with_sha256_and_filled_after(app):
    body = os.urandom(INLINE_DIGEST_BYTES + 1)
    repository = app.stowage.repository("raw")
    with repository.blob_store.writer() as writer:
        writer.write(body)
        info = writer.commit()
    assert info.digests == {"sha256": hashlib.sha256(body).hexdigest()}  # nothing else on the request path

    asset = repository.store("big.bin", io.BytesIO(body), length=len(body))
    assert ChecksumFiller.of(app.stowage).wait_idle(30)
    assert app.stowage.catalog.blob_checksums([asset.blob_sha256])[asset.blob_sha256] == expected(body)


def test_small_blob_and_named_digests_are_computed_while_writing(app):
    small = os.urandom(INLINE_DIGEST_BYTES)
    store = app.stowage.repository("raw").blob_store
    with store.writer() as writer:
        writer.write(small)
        assert writer.commit().digests == expected(small)
    large = os.urandom(INLINE_DIGEST_BYTES + 1)
    with store.writer(("sha1",)) as writer:  # a format that needs one (npm's shasum) names it
        writer.write(large)
        assert set(writer.commit().digests) == {"sha256", "sha1"}


def test_rest_answers_checksums_of_a_blob_not_filled_yet(app):
    body = os.urandom(INLINE_DIGEST_BYTES + 100)
    response = app.client.simulate_put("/repository/raw/f.bin", body=body, headers=app.admin)
    assert response.status_code == 201
    found = app.client.simulate_get("/service/rest/v1/search/assets", params={"repository": "raw"}, headers=app.admin)
    assert found.json["items"][0]["checksum"] == expected(body)


def test_sweep_finds_blobs_whose_process_stopped_before_filling(app):
    body = os.urandom(INLINE_DIGEST_BYTES + 7)
    repository = app.stowage.repository("raw")
    with repository.blob_store.writer() as writer:  # as if the process died right after the commit
        writer.write(body)
        repository.record("lost.bin", writer.commit())
    filler = ChecksumFiller.of(app.stowage)
    filler.wait_idle(30)
    sha256 = hashlib.sha256(body).hexdigest()
    app.stowage.catalog._execute("UPDATE blobs SET md5 = NULL, sha1 = NULL, sha512 = NULL WHERE sha256 = ?", (sha256,))
    assert app.stowage.catalog.blobs_missing_checksums(10) == [(sha256, "default")]
    assert filler.sweep() == 1 and filler.wait_idle(30)
    assert app.stowage.catalog.blob_checksums([sha256])[sha256] == expected(body)
    assert app.stowage.catalog.blobs_missing_checksums(10) == []


def test_resumable_upload_hashes_sha256_only_when_large(app):
    store = app.stowage.repository("raw").blob_store
    large, small = os.urandom(INLINE_DIGEST_BYTES + 3), os.urandom(1000)
    upload = store.resumable("large-1")
    upload.append(io.BytesIO(large[:1 << 20]))
    upload.append(io.BytesIO(large[1 << 20:]))
    assert upload.commit().digests == {"sha256": hashlib.sha256(large).hexdigest()}
    upload = store.resumable("small-1")
    upload.append(io.BytesIO(small))
    assert upload.commit().digests == expected(small)


def test_the_start_sweep_runs_in_one_process_of_several(app, stowage_factory):
    body = os.urandom(INLINE_DIGEST_BYTES + 9)
    repository = app.stowage.repository("raw")
    with repository.blob_store.writer() as writer:
        writer.write(body)
        repository.record("lost.bin", writer.commit())
    ChecksumFiller.of(app.stowage).close()  # the process "stops" before filling: checksums stay missing
    sha256 = hashlib.sha256(body).hexdigest()
    assert app.stowage.catalog.blobs_missing_checksums(10) == [(sha256, "default")]
    # two more processes on the same data directory start; one sweeps, the other finds the lease taken
    first = stowage_factory(data_dir=app.stowage.settings.data_path, repositories=[RAW])
    second = stowage_factory(data_dir=app.stowage.settings.data_path, repositories=[RAW])
    ChecksumFiller.of(first.stowage).sweep_at_start()
    ChecksumFiller.of(second.stowage).sweep_at_start()
    assert ChecksumFiller.of(first.stowage).wait_idle(30)
    assert not ChecksumFiller.of(second.stowage)._pending and ChecksumFiller.of(second.stowage)._thread is None
    assert app.stowage.catalog.blob_checksums([sha256])[sha256] == expected(body)


def test_a_check_that_asks_for_every_digest_of_a_large_staged_blob_gets_them(app):
    """Formats' checks read ``StagedBlob.digests()`` (npm: sha1 and sha512): a large blob computes what its
    writer left for later, and records them at the commit (no background work left)."""
    from stowage.staging import Accepted

    body = os.urandom(INLINE_DIGEST_BYTES + 5)
    repository = app.stowage.repository("raw")
    with repository.stage() as staged:
        staged.receive(io.BytesIO(body))
        assert staged.digests() == expected(body)
        asset = repository.commit(staged, Accepted(path="checked.bin"))
    assert staged.committed.digests == expected(body)
    assert app.stowage.catalog.blob_checksums([asset.blob_sha256])[asset.blob_sha256] == expected(body)
    assert not ChecksumFiller.of(app.stowage)._pending
