"""Small blobs kept in memory by digest, so a hot small file is not opened and read for every GET.

A blob is named by the sha256 of its bytes, so what is cached under a digest can never be wrong on any
process or node: a change to a repository points its asset at another digest (the asset itself is read
from the catalog on every request), and a deleted blob is no longer referenced. Nothing here needs
invalidating; the cache only bounds its memory (least recently used out first).
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from typing import IO, TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from stowage.stowage import Stowage

#: blobs up to this size are cached (the size content.py sends as bytes rather than as a file).
MAX_BLOB_BYTES = 64 * 1024
#: the most memory the cache holds per process.
MAX_TOTAL_BYTES = 16 * 1024 * 1024


class SmallBlobCache:
    def __init__(self, max_total: int = MAX_TOTAL_BYTES) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._total = 0
        self.max_total = max_total

    @classmethod
    def of(cls, stowage: "Stowage") -> "SmallBlobCache":
        return stowage.extension("small-blob-cache", cls)

    def get(self, sha256: str) -> bytes | None:
        with self._lock:
            data = self._items.get(sha256)
            if data is not None:
                self._items.move_to_end(sha256)
            return data

    def put(self, sha256: str, data: bytes) -> None:
        if len(data) > MAX_BLOB_BYTES:
            return
        with self._lock:
            if sha256 in self._items:
                return
            self._items[sha256] = data
            self._total += len(data)
            while self._total > self.max_total:
                _, dropped = self._items.popitem(last=False)
                self._total -= len(dropped)

    def opener(self, sha256: str, size: int, open_blob: Callable[[], IO[bytes]]) -> Callable[[], IO[bytes]]:
        """An opener for ``send_content``: the cached bytes, else the blob read once and remembered."""
        def open_cached() -> IO[bytes]:
            data = self.get(sha256)
            if data is None:
                from stowage.http.content import read_exactly

                stream = open_blob()
                try:
                    data = read_exactly(stream, size)
                finally:
                    stream.close()
                self.put(sha256, data)
            return io.BytesIO(data)

        return open_cached
