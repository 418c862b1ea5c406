"""The built-in blob store: one file per digest under ``<root>/blobs/ab/cd/<sha256>``.

New blobs are written to ``<root>/tmp``, fsynced and renamed into place, so a crash leaves either the
whole blob or an orphan temp file that is never served (and is swept at start-up once it is old).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import tempfile
import time
from pathlib import Path
from typing import IO, Iterable, Iterator, Mapping

from stowage.blobstore.base import (CHUNK_SIZE, BlobStore, BlobStoreConfig, BlobWriter, ResumableUpload,
                                    UploadDigests, digests_to_compute)
from stowage.errors import DigestMismatch, NotFound
from stowage.models import BlobInfo

#: temp files older than this are leftovers of a crashed writer (no upload takes six hours).
STALE_TEMP_SECONDS = 6 * 3600
_HEX = frozenset("0123456789abcdef")
#: temp-directory name prefix of a blob the collector has moved aside while it decides.
COLLECT_PREFIX = "collect-"
_UPLOAD_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(source: Path, target: Path) -> None:
    """Make the finished file ``source`` the blob ``target``.

    Same digest, same bytes: an existing file is kept (rewriting a large blob costs 2-3x). Touching it
    first is what tells a concurrent collector (:meth:`FileBlobStore.collect`) that it is in use; if the
    collector already took it away, the touch fails and our copy goes into place instead.
    """
    try:
        os.utime(target)
    except FileNotFoundError:
        if not target.parent.is_dir():
            # New fan-out directories must be durable too, or a crash could lose the entry of a blob
            # whose catalog row is already committed.
            target.parent.mkdir(parents=True, exist_ok=True)
            _fsync_dir(target.parent.parent)
            _fsync_dir(target.parent.parent.parent)
        os.replace(source, target)
        _fsync_dir(target.parent)
    else:
        source.unlink(missing_ok=True)


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

    def open_partial(self) -> IO[bytes] | None:
        # The handle follows the inode: it stays valid when the file is renamed into place at commit,
        # or unlinked on abort (readers learn of the abort from whoever tracks the write).
        return open(self._temp, "rb")

    def partial_path(self) -> str | None:
        return str(self._temp)

    def _commit(self, info: BlobInfo) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        _publish(self._temp, self._store.path_for(info.sha256))
        self._done = True

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._file.close()
        self._temp.unlink(missing_ok=True)


class FileResumableUpload(ResumableUpload):
    """``<root>/tmp/resumable-<id>``: appended to by whichever process gets the request; renamed into
    place on commit (no second copy of the bytes).

    Digests are computed while appending and remembered by this process with the size they cover; a
    commit in a process that did not see every append (or asks for another digest) reads the file again.
    """

    def __init__(self, store: "FileBlobStore", upload_id: str):
        if not _UPLOAD_ID.match(upload_id):
            raise NotFound(f"no upload {upload_id!r}")
        self.upload_id = upload_id
        self._store = store
        self.path = store.tmp_dir / f"resumable-{upload_id}"

    def size(self) -> int | None:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return None

    def append(self, stream: IO[bytes], length: int | None = None) -> int:
        with open(self.path, "ab") as out:
            start = out.tell()
            hashers = self._store.upload_digests.hashers(self.upload_id, start)
            copied = 0
            while length is None or copied < length:
                chunk = stream.read(CHUNK_SIZE if length is None else min(CHUNK_SIZE, length - copied))
                if not chunk:
                    break
                out.write(chunk)
                for hasher in hashers.values():
                    hasher.update(chunk)
                copied += len(chunk)
            end = out.tell()
        self._store.upload_digests.remember(self.upload_id, end, hashers)
        return end

    def _digests(self, names: set[str], size: int) -> dict[str, str]:
        cached = self._store.upload_digests.hashers(self.upload_id, size)
        if not names.issubset(cached):
            cached = {name: hashlib.new(name) for name in names}
            with open(self.path, "rb") as handle:
                while chunk := handle.read(CHUNK_SIZE):
                    for hasher in cached.values():
                        hasher.update(chunk)
        return {name: cached[name].hexdigest() for name in names}

    def commit(self, *, extra_digests: Iterable[str] = (), expected: Mapping[str, str] | None = None) -> BlobInfo:
        size = self.size()
        if size is None:
            raise NotFound(f"upload {self.upload_id} does not exist")
        digests = self._digests(digests_to_compute(size, extra_digests, expected), size)
        for name, value in (expected or {}).items():
            if digests[name] != value.lower():
                self.discard()
                raise DigestMismatch(f"{name} of the received content is {digests[name]}, expected {value}")
        with open(self.path, "rb+") as handle:
            os.fsync(handle.fileno())
        _publish(self.path, self._store.path_for(digests["sha256"]))
        self._store.upload_digests.forget(self.upload_id)
        return BlobInfo(sha256=digests["sha256"], size=size, digests=digests)

    def discard(self) -> None:
        self._store.upload_digests.forget(self.upload_id)
        self.path.unlink(missing_ok=True)


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
        self.upload_digests = UploadDigests()

    def resumable(self, upload_id: str) -> ResumableUpload:
        return FileResumableUpload(self, upload_id)

    def path_for(self, sha256: str) -> Path:
        return Path(self._path(sha256))

    def local_path(self, sha256: str) -> str | None:
        path = self._path(sha256)
        return path if os.path.exists(path) else None

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

    def collect(self, sha256: str, older_than: float) -> bool:
        """Move the blob aside, then delete it only if no writer touched it since ``older_than``.

        Against a writer that re-uses the digest at the same moment: if its touch came first, the file's
        mtime is recent and the file is put back; if the move came first, its touch fails and it writes
        its own copy. Either way the digest's file exists once the writer's catalog row is committed.
        """
        target = self.path_for(sha256)
        aside = self.tmp_dir / f"{COLLECT_PREFIX}{sha256}-{secrets.token_hex(4)}"
        try:
            os.rename(target, aside)
        except FileNotFoundError:
            return True
        try:
            recently_used = aside.stat().st_mtime >= older_than
        except BaseException:
            os.replace(aside, target)
            raise
        if recently_used:
            os.replace(aside, target)
            return False
        aside.unlink()
        return True

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
            if path.name.startswith(COLLECT_PREFIX):
                # A collector stopped between moving a blob aside and deciding: put it back (same bytes;
                # the next collection decides again).
                self._restore(path)
                continue
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed

    def _restore(self, aside: Path) -> None:
        sha256 = aside.name[len(COLLECT_PREFIX):].split("-", 1)[0]
        try:
            target = self.path_for(sha256)
        except NotFound:
            aside.unlink(missing_ok=True)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(aside, target)
        except FileNotFoundError:
            pass
