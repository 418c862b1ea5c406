"""The data directory holds the catalog (password hashes, tokens) and every stored blob: it is the
server's alone. The server creates what it writes as 0700 directories and 0600 files (the CLI sets a
0077 umask at start-up), and warns at start-up about anything in it that other users may read.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

#: the process umask the CLI sets: new files 0600, new directories 0700.
SERVER_UMASK = 0o077


def restrict_umask() -> int:
    """Make everything the process creates private to its user; returns the previous umask."""
    return os.umask(SERVER_UMASK)


def too_open(data_dir: Path) -> list[str]:
    """The data directory and the entries of its first two levels (the catalog in ``db/``, secrets,
    blob-store roots) that grant any permission to the group or to others, as ``path (mode 0755)``
    lines. Blob files further down are not walked: a store holds millions, and the directories above
    them already keep others out."""
    found: list[str] = []
    entries = [data_dir]
    for level in (data_dir, *_directories(data_dir)):
        entries.extend(_listing(level))
    for entry in entries:
        try:
            mode = entry.lstat().st_mode
        except OSError:
            continue
        if stat.S_ISLNK(mode):
            continue
        if mode & 0o077:
            found.append(f"{entry} (mode {stat.S_IMODE(mode):04o})")
    return found


def warn_if_open(data_dir: Path) -> list[str]:
    """Log a warning naming what other local users may read; returns the same list (for tests)."""
    found = too_open(data_dir)
    if found:
        log.warning("the data directory is readable or writable by other users; any local user can copy the "
                    "catalog (password hashes, tokens) and stored content. Fix it with `chmod -R go-rwx %s`. "
                    "Too open: %s", data_dir, ", ".join(found))
    return found


def _listing(directory: Path) -> list[Path]:
    try:
        return sorted(directory.iterdir())
    except OSError:
        return []


def _directories(directory: Path) -> list[Path]:
    return [entry for entry in _listing(directory) if entry.is_dir() and not entry.is_symlink()]
