"""Whether a SQLite catalog in WAL mode changed, known without a query: its wal-index header.

In WAL mode every connection to the database, in every process, shares the wal-index (the ``-shm`` file,
memory-mapped by SQLite's unix VFS), and its header changes with each committed transaction: ``iChange``
is "incremented with each transaction", ``mxFrame`` counts the committed frames, and a checksum covers
both (https://www.sqlite.org/walformat.html, "The WAL-Index Header"). Reading those 48 bytes from our own
read-only mapping of the same file is a memory read: no system call, no statement, and the GIL is never
released (a query releases it twice, and each release is a hand-off between the server's threads).

:class:`AssetRowCache` uses it to answer a hot asset lookup (the one query of a small GET) from memory
while staying exact: an entry is used only while the header is byte for byte what it was *before* the
entry's query ran, i.e. nothing was committed anywhere since. A header read while a writer updates it is
simply a different stamp (a miss). As a second guard an entry also expires after
:data:`MAX_AGE_SECONDS`, the bound other per-process caches already keep (issue 16).
"""

from __future__ import annotations

import mmap
import os
import sys
import threading
import time
from typing import Any, Callable, Hashable, Sequence

from stowage.lru import LRUCache

#: the first copy of the header: iVersion, padding, iChange, isInit, bigEndCksum, szPage, mxFrame, nPage,
#: aFrameCksum, aSalt, aCksum.
HEADER_BYTES = 48
#: ``iVersion`` of the wal-index this reading understands (native byte order, like the whole header).
WAL_INDEX_VERSION = 3007000
#: how often a catalog whose ``-shm`` file cannot be mapped (yet) tries again.
RETRY_SECONDS = 1.0
#: the longest an entry is used, whatever the header says.
MAX_AGE_SECONDS = 1.0
#: asset rows kept per process.
MAX_ENTRIES = 4096


class WalChangeStamp:
    """The wal-index header of the SQLite database at ``database_path``, read from shared memory."""

    def __init__(self, database_path: str):
        self.path = database_path + "-shm"
        self._map: mmap.mmap | None = None
        self._next_try = 0.0
        self._lock = threading.Lock()

    def read(self) -> bytes | None:
        """The header's bytes, or None when there is no usable wal-index (not WAL mode, not yet created,
        an unknown version): the caller then queries as usual."""
        mapped = self._map
        if mapped is None:
            mapped = self._open()
            if mapped is None:
                return None
        header = mapped[:HEADER_BYTES]
        if header[12] != 1 or int.from_bytes(header[:4], sys.byteorder) != WAL_INDEX_VERSION:
            return None  # isInit not set, or a format this code does not know
        return header

    def _open(self) -> mmap.mmap | None:
        now = time.monotonic()
        if now < self._next_try:
            return None
        with self._lock:
            if self._map is not None:
                return self._map
            self._next_try = now + RETRY_SECONDS
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except OSError:
                return None
            try:
                if os.fstat(fd).st_size < HEADER_BYTES:
                    return None
                self._map = mmap.mmap(fd, HEADER_BYTES, access=mmap.ACCESS_READ)
            except (OSError, ValueError):
                return None
            finally:
                os.close(fd)  # the mapping keeps the file
            return self._map

    def close(self) -> None:
        with self._lock:
            if self._map is not None:
                self._map.close()
                self._map = None


class AssetRowCache:
    """Asset rows by (repository, path), each kept with the change stamp read before its query.

    Rows are tuples of plain values, so every caller still builds its own ``Asset`` from them: nothing
    mutable is shared between requests.
    """

    def __init__(self, stamp: WalChangeStamp, max_entries: int = MAX_ENTRIES):
        self.stamp = stamp
        self._rows = LRUCache(max_entries)

    def row(self, key: Hashable, query: Callable[[], Sequence[Any] | None]) -> Sequence[Any] | None:
        """The row ``query()`` returns for ``key`` now: from memory when nothing was committed since it
        was read (and it is younger than :data:`MAX_AGE_SECONDS`), else queried and kept."""
        stamp = self.stamp.read()
        if stamp is None:
            return query()
        now = time.monotonic()
        entry = self._rows.get(key)
        if entry is not None and entry[0] == stamp and now - entry[1] < MAX_AGE_SECONDS:
            return entry[2]
        row = query()
        self._rows.put(key, (stamp, now, row))
        return row
