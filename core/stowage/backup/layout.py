"""The backup directory: a shared content-addressed blob area and one directory per generation.

::

    DIR/
      .lock                         held (flock) by the backup or prune writing into DIR
      blobs/ab/cd/<sha256>          every blob any kept generation references, once
      tmp/                          blobs being copied (renamed into blobs/ when complete)
      generations/<G>/              one backup; <G> is its UTC start time, so names sort by age
        catalog.sqlite              the catalog snapshot (SQLite online backup API)
        manifest.json               versions, counts, bytes, sha256 of catalog.sqlite, blob stores
        plugins.json                the installed plugins and their versions
        config.toml                 the configuration file the server ran with (when there was one)
        files/                      the data directory's own files (admin.password, secret.key), 0600
      generations/.<G>.partial/     a generation being written; never restored, removed by the next run

A generation is complete once its directory has its final name (the rename is the commit).
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any, Iterator

from stowage.errors import ConfigurationError, NotFound

MANIFEST = "manifest.json"
CATALOG = "catalog.sqlite"
PLUGINS = "plugins.json"
CONFIG = "config.toml"
FILES = "files"
#: the layout version written in every manifest; restore refuses a newer one.
FORMAT_VERSION = 1
_HEX = frozenset("0123456789abcdef")


def new_generation_name(now: datetime.datetime | None = None) -> str:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%S.%fZ")


class BackupDirectory:
    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.blob_dir = self.root / "blobs"
        self.tmp_dir = self.root / "tmp"
        self.generations_dir = self.root / "generations"

    def create(self) -> None:
        for directory in (self.root, self.blob_dir, self.tmp_dir, self.generations_dir):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive use of the directory (one backup or prune at a time, across processes)."""
        self.create()
        with open(self.root / ".lock", "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ConfigurationError(f"{self.root} is in use by another backup") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- blobs ----------------------------------------------------------------------------------------
    def blob_path(self, sha256: str) -> Path:
        if len(sha256) != 64 or not _HEX.issuperset(sha256):
            raise NotFound(f"no blob {sha256!r}")
        return self.blob_dir / sha256[:2] / sha256[2:4] / sha256

    def blob_digests(self) -> Iterator[str]:
        for path in self.blob_dir.glob("*/*/*"):
            yield path.name

    # -- generations ----------------------------------------------------------------------------------
    def generations(self) -> list[str]:
        """Complete generations, oldest first."""
        if not self.generations_dir.is_dir():
            return []
        return sorted(p.name for p in self.generations_dir.iterdir()
                      if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).is_file())

    def generation_dir(self, name: str) -> Path:
        return self.generations_dir / name

    def partial_dir(self, name: str) -> Path:
        return self.generations_dir / f".{name}.partial"

    def resolve(self, generation: str | None) -> str:
        """The named generation (or the newest); :class:`NotFound` naming the ones there are."""
        names = self.generations()
        if not names:
            raise NotFound(f"{self.root} holds no complete backup generation")
        if generation is None or generation == "latest":
            return names[-1]
        if generation in names:
            return generation
        raise NotFound(f"{self.root} has no generation {generation!r}; it has {', '.join(names)}")

    def manifest(self, generation: str) -> dict[str, Any]:
        return json.loads((self.generation_dir(generation) / MANIFEST).read_text())

    def remove_partials(self) -> None:
        """Leftovers of an interrupted backup (their blobs are reclaimed by the next prune)."""
        for path in self.generations_dir.glob(".*.partial"):
            shutil.rmtree(path, ignore_errors=True)
        for path in self.tmp_dir.iterdir():
            path.unlink(missing_ok=True)

    # -- pruning --------------------------------------------------------------------------------------
    def prune(self, keep: int) -> tuple[list[str], int, int]:
        """Keep the newest ``keep`` generations; delete blobs only the removed ones used.

        Call with :meth:`locked` held. Returns (removed generations, blobs freed, bytes freed).
        """
        if keep < 1:
            raise ConfigurationError("--keep must be at least 1")
        names = self.generations()
        removed = names[:-keep] if len(names) > keep else []
        for name in removed:
            shutil.rmtree(self.generation_dir(name))
        if not removed:
            return [], 0, 0
        used: set[str] = set()
        for name in self.generations():
            used.update(referenced_digests(self.generation_dir(name) / CATALOG))
        freed = freed_bytes = 0
        for sha256 in list(self.blob_digests()):
            if sha256 not in used:
                path = self.blob_path(sha256)
                freed_bytes += path.stat().st_size
                path.unlink()
                freed += 1
        return removed, freed, freed_bytes


def referenced_digests(catalog_file: Path) -> set[str]:
    """Every blob digest an asset of the catalog snapshot references."""
    conn = sqlite3.connect(f"file:{catalog_file}?mode=ro", uri=True)
    try:
        return {row[0] for row in conn.execute("SELECT DISTINCT blob_sha256 FROM assets")}
    finally:
        conn.close()


def referenced_blobs(catalog_file: Path) -> list[tuple[str, str, int]]:
    """(sha256, blob store, size) of every blob an asset of the snapshot references, in digest order."""
    conn = sqlite3.connect(f"file:{catalog_file}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT a.blob_sha256, COALESCE(b.store, 'default'), MAX(a.size) FROM assets a "
                            "LEFT JOIN blobs b ON b.sha256 = a.blob_sha256 GROUP BY a.blob_sha256 "
                            "ORDER BY a.blob_sha256").fetchall()
        return [(sha, store, int(size)) for sha, store, size in rows]
    finally:
        conn.close()


def catalog_counts(catalog_file: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{catalog_file}?mode=ro", uri=True)
    try:
        return {table: int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
                for table in ("repositories", "components", "assets", "blobs")}
    finally:
        conn.close()
