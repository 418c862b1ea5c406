"""The built-in blob store: one file per digest under ``<root>/blobs/ab/cd/<sha256>``.

New blobs are written to ``<root>/tmp``, fsynced and renamed into place, so a crash leaves either the
whole blob or an orphan temp file that is never served (and is swept at start-up once it is old).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import IO, Iterable, Iterator

from stowage.blobstore.base import BlobStore, BlobStoreConfig, BlobWriter
from stowage.errors import NotFound
from stowage.models import BlobInfo

#: temp files older than this are leftovers of a crashed writer (no upload takes six hours).
STALE_TEMP_SECONDS = 6 * 3600
_HEX = frozenset("0123456789abcdef")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileBlobWriter(BlobWriter):
    def __init__(self, store: "FileBlobStore", extra_digests: Iterable[str]):
        super().__init__(extra_digests)
        self._store = store
        fd, name = tempfile.mkstemp(dir=store.tmp_dir, prefix="upload-")
        self._file = os.fdopen(fd, "wb", buffering=0)
        self._temp = Path(name)
        self._done = False

    def _write(self, data: bytes) -> None:
        self._file.write(data)

    def _commit(self, info: BlobInfo) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        target = self._store.path_for(info.sha256)
        if target.exists():
            # Same digest, same bytes: keep the existing file (rewriting a large blob costs 2-3x); touch it
            # so a collector sweeping by age leaves it alone.
            self._temp.unlink(missing_ok=True)
            os.utime(target)
        else:
            if not target.parent.is_dir():
                # New fan-out directories must be durable too, or a crash could lose the entry of a blob
                # whose catalog row is already committed.
                target.parent.mkdir(parents=True, exist_ok=True)
                _fsync_dir(target.parent.parent)
                _fsync_dir(target.parent.parent.parent)
            os.replace(self._temp, target)
            _fsync_dir(target.parent)
        self._done = True

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._file.close()
        self._temp.unlink(missing_ok=True)


class FileBlobStore(BlobStore):
    def __init__(self, config: BlobStoreConfig, root: Path):
        super().__init__(config)
        self.root = Path(root)
        self.blob_dir = self.root / "blobs"
        self._blob_root = str(self.blob_dir)
        self.tmp_dir = self.root / "tmp"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.sweep_temp_files()

    def path_for(self, sha256: str) -> Path:
        return Path(self._path(sha256))

    def _path(self, sha256: str) -> str:
        # Plain strings: this is on every download's path and pathlib costs ~25 µs per call.
        if len(sha256) != 64 or not _HEX.issuperset(sha256):
            raise NotFound(f"no blob {sha256!r}")
        return f"{self._blob_root}/{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def writer(self, extra_digests: Iterable[str] = ()) -> BlobWriter:
        return FileBlobWriter(self, extra_digests)

    def open(self, sha256: str) -> IO[bytes]:
        try:
            return open(self._path(sha256), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {sha256} is missing from blob store {self.name!r}") from None

    def exists(self, sha256: str) -> bool:
        try:
            return self.path_for(sha256).exists()
        except NotFound:
            return False

    def delete(self, sha256: str) -> None:
        self.path_for(sha256).unlink(missing_ok=True)

    def digests(self) -> Iterator[str]:
        for path in self.blob_dir.glob("*/*/*"):
            yield path.name

    def usage(self) -> dict[str, int]:
        stat = os.statvfs(self.root)
        return {"availableSpaceInBytes": stat.f_bavail * stat.f_frsize,
                "totalSizeInBytes": stat.f_blocks * stat.f_frsize}

    def sweep_temp_files(self, older_than: float = STALE_TEMP_SECONDS) -> int:
        cutoff = time.time() - older_than
        removed = 0
        for path in self.tmp_dir.iterdir():
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed
