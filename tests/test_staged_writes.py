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
from stowage.errors import (InvalidContent, MethodNotAllowed, NamePolicyViolation, PayloadTooLarge, RepositoryOffline,
                            WritePolicyViolation)
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


def stored(ts) -> dict:
    """Everything a write can leave, read through the catalog and blob store APIs (so the tests run on the
    PostgreSQL catalog too: STOWAGE_TEST_CATALOG=postgresql)."""
    catalog = ts.stowage.catalog
    names = [repository.name for repository in ts.stowage.repositories()]
    return {"assets": sorted((a.repository, a.path, a.blob_sha256) for name in names for a in catalog.iter_assets(name)),
            "components": sorted((c.repository, c.name, c.version) for name in names
                                 for c in catalog.list_components(name, limit=1000).items),
            "documents": catalog.list_documents("test.index"),
            "blobs": sorted(catalog.recorded_blobs()),
            "stores": {name: sorted(store.digests()) for name, store in ts.stowage.blob_stores().items()}}


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
    before = stored(ts)

    def refuse(staged: StagedBlob) -> Accepted:
        with staged.open() as handle:
            assert handle.read(4) == b"\x7fELF"
        raise InvalidContent("not what this format takes")

    with pytest.raises(InvalidContent):
        repository.write(io.BytesIO(BODY), refuse, length=len(BODY))
    assert stored(ts) == before
    assert temp_leftovers(ts) == []


def test_the_transaction_work_of_then_rolls_back_with_the_asset(ts):
    repository = ts.stowage.repository("files")
    before = stored(ts)

    def then(asset) -> None:
        ts.stowage.catalog.put_document("test.index", "app", {"asset": asset.path})
        raise WritePolicyViolation("a concurrent publish won")

    with pytest.raises(WritePolicyViolation):
        repository.write(io.BytesIO(BODY), lambda staged: Accepted(path="app.bin", then=then))
    after = stored(ts)
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
    before = stored(ts)
    with pytest.raises(NamePolicyViolation):
        repository.write(io.BytesIO(BODY), lambda staged: Accepted(path="pkg.bin", artifact_name="evil-pkg"))
    assert stored(ts) == before
    assert temp_leftovers(ts) == []


def test_too_large_or_short_bodies_are_refused_before_any_check(ts):
    repository = ts.stowage.repository("files")
    before = stored(ts)
    never = lambda staged: pytest.fail("the check must not run")  # noqa: E731
    with pytest.raises(PayloadTooLarge):
        repository.write(io.BytesIO(BODY), never, max_bytes=1000)  # no length: found while reading
    with pytest.raises(PayloadTooLarge):
        repository.write(io.BytesIO(BODY), never, length=len(BODY), max_bytes=1000)
    with pytest.raises(InvalidContent):
        repository.write(io.BytesIO(BODY[:10]), never, length=len(BODY))
    assert stored(ts) == before
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


def test_a_refused_component_upload_stores_none_of_its_parts(ts):
    """Every part is checked (here: its path against ALLOW_ONCE) before any becomes a blob."""
    ts.create_repository(name="once", format="raw", type="hosted", storage={"writePolicy": "ALLOW_ONCE"})
    repository = ts.stowage.repository("once")
    repository.store("docs/taken.txt", io.BytesIO(b"first"))
    before = stored(ts)
    form = [("raw.directory", "docs"), ("raw.asset1", ("new.txt", b"new bytes")),
            ("raw.asset2", ("taken.txt", b"second bytes"))]
    body, content_type = multipart(form)
    answer = ts.client.simulate_post("/service/rest/v1/components", params={"repository": "once"}, body=body,
                                     headers={**ts.admin, "Content-Type": content_type})
    assert answer.status_code == 400, answer.text
    assert stored(ts) == before and temp_leftovers(ts) == []


def multipart(fields: list) -> tuple[bytes, str]:
    boundary = "stagedboundary"
    out = b""
    for name, value in fields:
        if isinstance(value, tuple):
            out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{value[0]}"\r\n'
                    f"Content-Type: application/octet-stream\r\n\r\n").encode() + value[1] + b"\r\n"
        else:
            out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_the_names_this_api_replaced_still_import_with_a_deprecation_warning():
    import stowage.plugin

    for name, replacement in [("UploadedFile", "StagedBlob"), ("PendingFile", "StagedBlob"),
                              ("multipart_writers", "receive_multipart"), ("read_multipart", "receive_multipart")]:
        with pytest.warns(DeprecationWarning, match=replacement):
            assert getattr(stowage.plugin, name) is not None
        assert name not in stowage.plugin.__all__


def test_compaction_removes_staged_copies_a_killed_process_left_and_keeps_live_ones(ts):
    from stowage.compaction import compact_blobs

    temp = ts.stowage.settings.data_path / "tmp"
    temp.mkdir(parents=True, exist_ok=True)
    stale, live = temp / "staged-crashed", temp / "staged-live"
    stale.write_bytes(b"left by kill -9")
    live.write_bytes(b"a check is reading this")
    os.utime(stale, (1, 1))
    compact_blobs(ts.stowage, 3600)
    assert not stale.exists() and live.exists()


def test_a_multipart_body_with_too_many_parts_is_a_400_that_stores_nothing(ts):
    """Each file part holds an open writer until the format decides: a hostile form cannot open thousands
    (falcon's multipart parser stops at max_body_part_count, 64 by default, before the next part)."""
    import falcon.media.multipart

    limit = falcon.media.multipart.MultipartParseOptions().max_body_part_count
    before = stored(ts)
    form = [(f"raw.asset{i}", (f"f{i}.txt", b"x")) for i in range(1, limit + 2)]
    body, content_type = multipart(form)
    answer = ts.client.simulate_post("/service/rest/v1/components", params={"repository": "files"}, body=body,
                                     headers={**ts.admin, "Content-Type": content_type})
    assert answer.status_code == 400 and "parts exceeded" in answer.text
    assert stored(ts) == before and temp_leftovers(ts) == []


class Unreadable(io.RawIOBase):
    def read(self, size: int = -1) -> bytes:
        raise AssertionError("the body was read")


@pytest.mark.parametrize("config", [dict(type="hosted", storage={"writePolicy": "DENY"}), dict(type="hosted",
                                    online=False), dict(type="proxy", proxy={"remoteUrl": "http://127.0.0.1:9/"})])
def test_a_repository_that_takes_no_writes_refuses_before_reading_the_body(ts, config, monkeypatch):
    from stowage.repository import Repository

    ts.create_repository(name="closed", format="raw", **config)
    repository = ts.stowage.repository("closed")
    with pytest.raises((WritePolicyViolation, RepositoryOffline, MethodNotAllowed)):
        repository.write(Unreadable(), lambda staged: pytest.fail("the check must not run"))
    monkeypatch.setattr(Repository, "stage", lambda *args, **kwargs: pytest.fail("a part was staged"))
    body, content_type = multipart([("raw.asset1", ("a.txt", b"x"))])
    answer = ts.client.simulate_post("/service/rest/v1/components", params={"repository": "closed"}, body=body,
                                     headers={**ts.admin, "Content-Type": content_type})
    assert answer.status_code in (400, 405, 503), answer.text
