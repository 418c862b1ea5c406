"""Putting one blob's bytes somewhere else: a hard link on the same file system, else a copy.

Blobs are immutable (the file store publishes by rename and collects by rename-then-unlink), so a hard
link is as good as a copy against deletion; it shares the inode, so it does not protect against the
disk itself failing or a file being damaged in place: back up onto another file system for that.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path
from typing import IO

from stowage.blobstore.base import CHUNK_SIZE

LINKED, COPIED, PRESENT = "linked", "copied", "present"


def same_file_system(a: Path, b: Path) -> bool:
    try:
        return os.stat(a).st_dev == os.stat(b).st_dev
    except FileNotFoundError:
        return False


def place_file(source: str | Path, target: Path, tmp_dir: Path, *, link: bool, size: int | None = None,
               durable: bool = True) -> str:
    """Make ``target`` hold ``source``'s bytes; returns LINKED, COPIED or PRESENT (kept as it was).

    A present target of the expected ``size`` is trusted (the name is the content's digest); anything
    else is replaced. Copies go through ``tmp_dir`` so a crash never leaves a short file under the name.
    Raises FileNotFoundError when ``source`` is gone. ``durable=False`` leaves the fsync of a copy to the
    caller (:func:`make_durable` after a batch: the kernel writes back many files at once meanwhile).
    """
    try:
        existing: int | None = os.stat(target).st_size
    except FileNotFoundError:
        existing = None
    if existing is not None and (size is None or existing == size):
        return PRESENT
    target.parent.mkdir(parents=True, exist_ok=True)
    if link:
        try:
            os.link(source, target)
            return LINKED
        except FileExistsError:
            os.unlink(target)  # a wrong-sized leftover
            os.link(source, target)
            return LINKED
        except OSError:
            pass  # e.g. EXDEV or a file system without hard links: copy instead
    temp = tmp_dir / f"{target.name}.{secrets.token_hex(4)}"
    try:
        shutil.copyfile(source, temp)  # sendfile/copy_file_range: no bytes through Python
        if durable:
            make_durable(temp)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return COPIED


def make_durable(path: Path) -> None:
    """fsync one file or directory (never a machine-wide sync(), which flushes every other program's writes)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_stream(stream: IO[bytes], target: Path, tmp_dir: Path) -> int:
    """Copy a readable stream to ``target`` through ``tmp_dir``; returns the bytes written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = tmp_dir / f"{target.name}.{secrets.token_hex(4)}"
    written = 0
    try:
        with open(temp, "wb") as out:
            while chunk := stream.read(CHUNK_SIZE):
                out.write(chunk)
                written += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return written
