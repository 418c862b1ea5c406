"""Small blobs served from memory by digest (issue 16): always the asset's current bytes, bounded memory."""

from __future__ import annotations

import io

from stowage.small_blobs import MAX_BLOB_BYTES, SmallBlobCache

RAW = {"name": "raw", "format": "raw", "type": "hosted", "online": True,
       "storage": {"blobStoreName": "default", "strictContentTypeValidation": False, "writePolicy": "ALLOW"}}


def test_an_overwritten_file_is_served_with_its_new_bytes(stowage_factory):
    app = stowage_factory(repositories=[RAW])
    for body in (b"first", b"second", b"first"):
        assert app.client.simulate_put("/repository/raw/f.txt", body=body, headers=app.admin).status_code in (200, 201)
        for _ in range(2):  # the second GET is answered from memory
            response = app.client.simulate_get("/repository/raw/f.txt")
            assert response.content == body
            assert app.client.simulate_get("/repository/raw/f.txt", headers={"Range": "bytes=1-2"}).content == body[1:3]


def test_a_hot_small_file_is_read_from_disk_once(stowage_factory, monkeypatch):
    app = stowage_factory(repositories=[RAW])
    app.client.simulate_put("/repository/raw/f.bin", body=b"x" * 4096, headers=app.admin)
    store = app.stowage.blob_store("default")
    opened = []
    original = store.open
    monkeypatch.setattr(store, "open", lambda digest: opened.append(digest) or original(digest))
    for _ in range(5):
        assert app.client.simulate_get("/repository/raw/f.bin").content == b"x" * 4096
    assert len(opened) <= 1
    # a large file is never kept in memory
    app.client.simulate_put("/repository/raw/big.bin", body=b"y" * (MAX_BLOB_BYTES + 1), headers=app.admin)
    opened.clear()
    for _ in range(2):
        app.client.simulate_get("/repository/raw/big.bin")
    assert len(opened) == 2


def test_memory_is_bounded_least_recently_used_out_first():
    cache = SmallBlobCache(max_total=10_000)
    for i in range(5):
        cache.put(f"d{i}", bytes(3000))
        assert cache.get("d0") is not None  # kept warm: never the one dropped
    assert cache._total <= 10_000
    assert cache.get("d0") is not None and cache.get("d4") is not None
    assert cache.get("d1") is None
    cache.put("huge", bytes(MAX_BLOB_BYTES + 1))
    assert cache.get("huge") is None


def test_the_opener_reads_once_and_refuses_a_short_blob():
    cache = SmallBlobCache()
    reads = []

    def open_blob():
        reads.append(1)
        return io.BytesIO(b"abc")

    opener = cache.opener("digest", 3, open_blob)
    assert opener().read() == b"abc" and opener().read() == b"abc"
    assert len(reads) == 1
    short = cache.opener("other", 10, lambda: io.BytesIO(b"abc"))
    try:
        short()
    except Exception as error:
        assert "ended" in str(error)
    else:
        raise AssertionError("a blob shorter than its asset was served")
    assert cache.get("other") is None
