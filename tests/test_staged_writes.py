"""The validate-before-commit write API (stowage.staging, Repository.stage/receive/commit/write): a check
reads the received bytes before they are a blob; refused, nothing is stored; accepted, the blob and its
asset (and the format's other catalog writes) land together, with the write and name policy re-checked."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from stowage.blobstore import BlobStoreConfig
from stowage.blobstore.file import FileBlobWriter
from stowage.errors import InvalidContent, NamePolicyViolation, PayloadTooLarge, WritePolicyViolation
from stowage.models import Component
from stowage.plugin import Accepted, StagedBlob

BODY = b"\x7fELF staged bytes " * 4096


def temp_leftovers(ts) -> list[str]:
    """Temp files a staged write may leave: the file store's writer files and core's staged copies."""
    found = []
    for directory in (ts.stowage.settings.data_path / "tmp", *(
            Path(store.tmp_dir) for store in ts.stowage.blob_stores().values() if hasattr(store, "tmp_dir"))):
        if directory.is_dir():
            found += [p.name for p in directory.rglob("*") if p.is_file() and not p.name.startswith("collect-")]
    return sorted(found)


@pytest.fixture
def ts(stowage_factory):
    ts = stowage_factory()
    ts.create_repository(name="files", format="raw", type="hosted")
    return ts


def check_reads_everything(seen: dict):
    def check(staged: StagedBlob) -> Accepted:
        with staged.open() as handle:
            seen["open"] = handle.read()
        seen["local"] = Path(staged.local_path()).read_bytes()
        seen["sha256"], seen["size"], seen["digests"] = staged.sha256, staged.size, staged.digests()
        return Accepted(path="dir/app.bin", component=Component(repository="files", format="raw", name="app"),
                        attributes={"checked": True})
    return check


def test_a_check_reads_the_bytes_before_commit_and_what_it_learnt_is_recorded(ts):
    repository = ts.stowage.repository("files")
    seen: dict = {}
    asset = repository.write(io.BytesIO(BODY), check_reads_everything(seen), length=len(BODY))
    assert seen["open"] == seen["local"] == BODY
    assert seen["sha256"] == hashlib.sha256(BODY).hexdigest() and seen["size"] == len(BODY)
    assert seen["digests"]["sha512"] == hashlib.sha512(BODY).hexdigest()
    assert asset.path == "dir/app.bin" and asset.attributes["checked"] is True
    assert ts.client.simulate_get("/repository/files/dir/app.bin").content == BODY
    assert ts.stowage.catalog.get_component(asset.component_id).name == "app"
    assert temp_leftovers(ts) == []


def test_a_refusing_check_stores_nothing(ts):
    repository = ts.stowage.repository("files")
    before = ts.stored_state()

    def refuse(staged: StagedBlob) -> Accepted:
        with staged.open() as handle:
            assert handle.read(4) == b"\x7fELF"
        raise InvalidContent("not what this format takes")

    with pytest.raises(InvalidContent):
        repository.write(io.BytesIO(BODY), refuse, length=len(BODY))
    assert ts.stored_state() == before
    assert temp_leftovers(ts) == []


def test_the_transaction_work_of_then_rolls_back_with_the_asset(ts):
    repository = ts.stowage.repository("files")
    before = ts.stored_state()

    def then(asset) -> None:
        ts.stowage.catalog.put_document("test.index", "app", {"asset": asset.path})
        raise WritePolicyViolation("a concurrent publish won")

    with pytest.raises(WritePolicyViolation):
        repository.write(io.BytesIO(BODY), lambda staged: Accepted(path="app.bin", then=then))
    after = ts.stored_state()
    assert after["assets"] == before["assets"] and after["documents"] == before["documents"]

    repository.write(io.BytesIO(BODY), lambda staged: Accepted(
        path="app.bin", then=lambda asset: ts.stowage.catalog.put_document("test.index", "app", asset.path)))
    assert ts.stowage.catalog.get_document("test.index", "app") == "app.bin"


def test_write_policy_is_checked_again_at_commit_for_the_path_the_check_chose(ts):
    """ALLOW_ONCE (raw hosted default here is ALLOW: set it): another writer got the path while the check ran."""
    ts.create_repository(name="once", format="raw", type="hosted", storage={"writePolicy": "ALLOW_ONCE"})
    repository = ts.stowage.repository("once")
    with repository.receive(io.BytesIO(BODY), len(BODY)) as staged:
        repository.store("app.bin", io.BytesIO(b"first"))  # lands while the check is still reading
        with pytest.raises(WritePolicyViolation):
            repository.commit(staged, Accepted(path="app.bin"))
    assert ts.client.simulate_get("/repository/once/app.bin").content == b"first"


def test_name_policy_applies_to_the_name_the_check_learnt(ts):
    ts.create_repository(name="named", format="raw", type="hosted", namePolicy={"deny": ["evil-*"]})
    repository = ts.stowage.repository("named")
    before = ts.stored_state()
    with pytest.raises(NamePolicyViolation):
        repository.write(io.BytesIO(BODY), lambda staged: Accepted(path="pkg.bin", artifact_name="evil-pkg"))
    assert ts.stored_state() == before
    assert temp_leftovers(ts) == []


def test_too_large_or_short_bodies_are_refused_before_any_check(ts):
    repository = ts.stowage.repository("files")
    before = ts.stored_state()
    never = lambda staged: pytest.fail("the check must not run")  # noqa: E731
    with pytest.raises(PayloadTooLarge):
        repository.write(io.BytesIO(BODY), never, max_bytes=1000)  # no length: found while reading
    with pytest.raises(PayloadTooLarge):
        repository.write(io.BytesIO(BODY), never, length=len(BODY), max_bytes=1000)
    with pytest.raises(InvalidContent):
        repository.write(io.BytesIO(BODY[:10]), never, length=len(BODY))
    assert ts.stored_state() == before
    assert temp_leftovers(ts) == []


def test_a_staged_blob_written_in_pieces_commits_once(ts):
    """npm decodes its tarball from base64: it writes the staged blob piece by piece."""
    repository = ts.stowage.repository("files")
    with repository.stage(("sha512",)) as staged:
        for start in range(0, len(BODY), 1000):
            staged.write(BODY[start:start + 1000])
        with staged.open() as handle:
            assert handle.read() == BODY
        asset = repository.commit(staged, Accepted(path="pieces.bin"))
        assert staged.blob.sha256 == asset.blob_sha256  # .blob after commit: the same blob, not a second
    assert ts.client.simulate_get("/repository/files/pieces.bin").content == BODY


@pytest.mark.parametrize("store_can", ["reread-no-file", "nothing"])
def test_stores_that_cannot_give_a_file_or_reread_still_give_checks_both(ts, monkeypatch, store_can):
    """What core does for stores unlike the file store: a copy for local_path(), a tee when the
    uncommitted bytes cannot be re-read at all (S3 runs the same through moto below)."""
    monkeypatch.setattr(FileBlobWriter, "partial_path", lambda self: None)
    if store_can == "nothing":
        monkeypatch.setattr(FileBlobWriter, "open_partial", lambda self: None)
    repository = ts.stowage.repository("files")
    seen: dict = {}
    repository.write(io.BytesIO(BODY), check_reads_everything(seen), length=len(BODY))
    assert seen["open"] == seen["local"] == BODY
    assert ts.client.simulate_get("/repository/files/dir/app.bin").content == BODY
    with pytest.raises(InvalidContent):
        repository.write(io.BytesIO(BODY), lambda staged: (staged.local_path(), staged.open().close(),
                                                           (_ for _ in ()).throw(InvalidContent("no")))[0])
    assert temp_leftovers(ts) == []


def test_on_s3_the_check_reads_a_local_copy_and_a_refusal_leaves_nothing_in_the_bucket(
        stowage_factory, s3_server, s3_bucket):
    store = BlobStoreConfig(name="s3", type="S3", attributes={
        "bucketConfiguration": s3_server.bucket_configuration(s3_bucket, prefix="staged")})
    ts = stowage_factory(blob_stores=[store], repositories=[dict(
        name="objects", format="raw", type="hosted", storage={"blobStoreName": "s3"})])
    repository = ts.stowage.repository("objects")
    big = os.urandom(3 * 1024 * 1024)
    with pytest.raises(InvalidContent):
        repository.write(io.BytesIO(big), lambda staged: (_ for _ in ()).throw(InvalidContent("refused")))
    assert s3_server.keys(s3_bucket, "staged/") == [] and s3_server.multipart_uploads(s3_bucket) == []
    seen: dict = {}
    repository.write(io.BytesIO(big), check_reads_everything(seen))
    assert seen["open"] == seen["local"] == big
    assert ts.client.simulate_get("/repository/objects/dir/app.bin").content == big
    assert temp_leftovers(ts) == []
