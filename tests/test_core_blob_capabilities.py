"""A blob store without the optional capabilities refuses cleanly instead of failing with a 500."""

from typing import IO, Iterable, Iterator

import pytest

from stowage.blobstore import BlobStore, BlobStoreConfig, BlobWriter
from stowage.errors import NotSupported


class BareStore(BlobStore):
    """Implements only the abstract interface."""

    def writer(self, extra_digests: Iterable[str] = ()) -> BlobWriter:
        raise AssertionError("not used")

    def open(self, sha256: str) -> IO[bytes]:
        raise AssertionError("not used")

    def exists(self, sha256: str) -> bool:
        return False

    def delete(self, sha256: str) -> None:
        pass

    def digests(self) -> Iterator[str]:
        return iter(())


def test_resumable_uploads_on_a_store_without_them_are_a_501():
    store = BareStore(BlobStoreConfig(name="bare", type="Bare"))
    with pytest.raises(NotSupported) as raised:
        store.resumable("upload-1")
    assert raised.value.status == 501 and raised.value.code == "UNSUPPORTED"
    assert "bare" in raised.value.message
