"""``stowage backup``: an online, consistent, incremental backup of a data directory.

Order matters for consistency while the server keeps serving and accepting uploads:

1. Pin blobs in the catalog (:meth:`~stowage.catalog.Catalog.pin_blobs`), renewed while the run lasts:
   from now on no blob GC, in any process, deletes a blob that was still referenced when the pin began.
2. Snapshot the catalog with SQLite's online backup API (one read transaction; writers go on).
3. Copy (or hard-link) every blob the *snapshot* references that the backup directory lacks. Uploads
   after the snapshot are not in this generation; the pin guarantees the snapshot's blobs still exist.
4. Configuration, the data directory's secrets (0600), the installed plugins, then the manifest; the
   generation becomes visible by renaming its directory last.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import secrets
import shutil
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrs import define, field

from stowage.backup.copying import COPIED, LINKED, make_durable, place_file, same_file_system, write_stream
from stowage.backup.layout import (CATALOG, CONFIG, FILES, FORMAT_VERSION, MANIFEST, PLUGINS, BackupDirectory,
                                   catalog_counts, new_generation_name, referenced_blobs)
from stowage.errors import NotFound
from stowage.parallel import for_each
from stowage.progress import RunProgress, human_bytes

if TYPE_CHECKING:
    from stowage.blobstore import BlobStore
    from stowage.stowage import Stowage

log = logging.getLogger(__name__)

#: seconds a pin lives without renewal: a crashed backup stops holding GC back after this.
PIN_SECONDS = 300.0


@define
class BackupReport:
    generation: str
    directory: Path
    assets: int = 0
    blobs: int = 0
    referenced_bytes: int = 0
    copied: int = 0
    copied_bytes: int = 0
    linked: int = 0
    linked_bytes: int = 0
    present: int = 0
    seconds: float = 0.0
    problems: list[str] = field(factory=list)
    pruned: list[str] = field(factory=list)
    freed_blobs: int = 0
    freed_bytes: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        rate = (self.copied_bytes + self.linked_bytes) / self.seconds if self.seconds else 0.0
        text = (f"generation {self.generation}: {self.assets} assets, {self.blobs} blobs "
                f"({human_bytes(self.referenced_bytes)}); copied {self.copied} new blobs "
                f"({human_bytes(self.copied_bytes)}), hard-linked {self.linked} ({human_bytes(self.linked_bytes)}), "
                f"{self.present} already in the backup; {self.seconds:.1f} s, {human_bytes(rate)}/s")
        if self.pruned:
            text += (f"; pruned {len(self.pruned)} generation(s), freed {self.freed_blobs} blobs "
                     f"({human_bytes(self.freed_bytes)})")
        if self.problems:
            text += f"; {len(self.problems)} PROBLEM(S)"
        return text


class BlobPin:
    """A catalog blob pin held (and renewed in a thread) for the duration of a ``with`` block."""

    def __init__(self, stowage: "Stowage", purpose: str, ttl: float = PIN_SECONDS):
        self.catalog = stowage.catalog
        self.purpose = purpose
        self.ttl = ttl
        self.pin_id = f"{purpose}:{stowage.node_id}:{secrets.token_hex(4)}"
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "BlobPin":
        self.started = self.catalog.pin_blobs(self.pin_id, self.purpose, self.ttl)
        self._thread = threading.Thread(target=self._renew, name=f"stowage-pin-{self.purpose}", daemon=True)
        self._thread.start()
        return self

    def _renew(self) -> None:
        while not self._done.wait(self.ttl / 5):
            try:
                self.catalog.pin_blobs(self.pin_id, self.purpose, self.ttl)
            except Exception:  # the next round retries; the pin lasts ttl meanwhile
                log.exception("renewing blob pin %s failed", self.pin_id)
        self.catalog.close()  # this thread's own connection

    def __exit__(self, *exc: Any) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.catalog.unpin_blobs(self.pin_id)


def run_backup(stowage: "Stowage", target: Path | str, *, config_path: Path | str | None = None,
               keep: int | None = None, link: bool = True, threads: int = 4,
               progress: RunProgress | None = None) -> BackupReport:
    """Write a new generation of ``stowage``'s data into the backup directory ``target``."""
    directory = BackupDirectory(target)
    progress = progress or RunProgress(show=False)
    started = time.monotonic()
    with directory.locked():
        directory.remove_partials()
        name = new_generation_name()
        partial = directory.partial_dir(name)
        partial.mkdir(mode=0o700)
        report = BackupReport(generation=name, directory=directory.root)
        with BlobPin(stowage, "backup"):
            stowage.catalog.snapshot(str(partial / CATALOG))
            snapshot_at = time.time()
            blobs = referenced_blobs(partial / CATALOG)
            _copy_blobs(stowage, directory, blobs, report, link=link, threads=threads, progress=progress)
        _copy_files(stowage, partial, config_path)
        _write_plugins(stowage, partial / PLUGINS)
        counts = catalog_counts(partial / CATALOG)
        report.assets = counts["assets"]
        for written in (CATALOG, PLUGINS):  # copied blobs were fsynced as they were copied
            make_durable(partial / written)
        manifest = _manifest(stowage, name, partial, counts, report, snapshot_at, config_path)
        _write_json(partial / MANIFEST, manifest)
        os.rename(partial, directory.generation_dir(name))
        make_durable(directory.generations_dir)  # the rename itself
        if keep is not None:
            report.pruned, report.freed_blobs, report.freed_bytes = directory.prune(keep)
    report.seconds = time.monotonic() - started
    log.debug("backup: %s", report.summary())
    return report


def _copy_blobs(stowage: "Stowage", directory: BackupDirectory, blobs: list[tuple[str, str, int]],
                report: BackupReport, *, link: bool, threads: int, progress: RunProgress) -> None:
    stores = stowage.blob_stores()
    linkable = {name: link and same_file_system(Path(getattr(store, "root", "/nonexistent")), directory.blob_dir)
                for name, store in stores.items()}
    report.blobs = len(blobs)
    report.referenced_bytes = sum(size for _, _, size in blobs)
    progress.phase("backup", files=len(blobs), total_bytes=report.referenced_bytes)
    lock = threading.Lock()
    copied: list[Path] = []

    def one(item: tuple[str, str, int]) -> None:
        sha256, store_name, size = item
        store = stores.get(store_name)
        try:
            if store is None:
                raise NotFound(f"blob store {store_name!r} does not exist")
            outcome = _copy_blob(store, sha256, size, directory, link=linkable.get(store_name, False))
            if outcome == COPIED:
                with lock:
                    copied.append(directory.blob_path(sha256))
        except (FileNotFoundError, NotFound) as error:
            with lock:
                report.problems.append(f"blob {sha256} (store {store_name}): missing, not backed up ({error})")
            progress.advance(1, size)
            return
        with lock:
            if outcome == COPIED:
                report.copied += 1
                report.copied_bytes += size
            elif outcome == LINKED:
                report.linked += 1
                report.linked_bytes += size
            else:
                report.present += 1
        progress.advance(1, size)

    for_each(one, blobs, threads=threads)
    # Durable before the manifest says the generation is whole. Flushing after the whole batch lets the
    # kernel write back many files together (most are clean by now), not one journal commit each.
    for_each(make_durable, copied, threads=threads)
    report.problems.sort()


def _copy_blob(store: "BlobStore", sha256: str, size: int, directory: BackupDirectory, *, link: bool) -> str:
    target = directory.blob_path(sha256)
    path_for = getattr(store, "path_for", None)
    if path_for is not None:
        return place_file(path_for(sha256), target, directory.tmp_dir, link=link, size=size, durable=False)
    if target.exists() and target.stat().st_size == size:
        return "present"
    with store.open(sha256) as stream:
        write_stream(stream, target, directory.tmp_dir)
    return COPIED


def _copy_files(stowage: "Stowage", partial: Path, config_path: Path | str | None) -> None:
    """The data directory's own files (generated admin password, secret key...), and the config file."""
    files = partial / FILES
    files.mkdir(mode=0o700)
    data = stowage.settings.data_path
    for path in sorted(data.iterdir()):
        if path.is_file() and not path.is_symlink():
            copy = files / path.name
            shutil.copyfile(path, copy)
            os.chmod(copy, 0o600)  # they are secrets: never readable by anyone else, whatever they were
    if config_path is not None:
        shutil.copyfile(config_path, partial / CONFIG)
        os.chmod(partial / CONFIG, 0o600)


def _installed_plugins(stowage: "Stowage") -> dict[str, Any]:
    manager = stowage.plugins
    plugins = []
    for name in manager.plugin_names():
        distribution, version = manager.distributions.get(name, (None, None))
        plugins.append({"name": name, "distribution": distribution, "version": version,
                        "formats": manager.provided_by.get(name, [])})
    return {"plugins": plugins, "formats": sorted(manager.formats)}


def _write_plugins(stowage: "Stowage", path: Path) -> None:
    _write_json(path, _installed_plugins(stowage))


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _manifest(stowage: "Stowage", name: str, partial: Path, counts: dict[str, int], report: BackupReport,
              snapshot_at: float, config_path: Path | str | None) -> dict[str, Any]:
    catalog_file = partial / CATALOG
    digest = hashlib.sha256()
    with open(catalog_file, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    stores = [{"name": store_name, "type": config.type, "path": config.path}
              for store_name, config in sorted((n, stowage.blob_store_config(n)) for n in stowage.blob_stores())]
    return {
        "formatVersion": FORMAT_VERSION,
        "generation": name,
        "snapshotAt": snapshot_at,
        "source": {"dataDir": str(stowage.settings.data_path), "node": stowage.node_id},
        "versions": {"stowage": _version("stowage"), "python": platform.python_version(),
                     "sqlite": sqlite3.sqlite_version,
                     "plugins": {p["name"]: p["version"] for p in _installed_plugins(stowage)["plugins"]}},
        "catalog": {"file": CATALOG, "sha256": digest.hexdigest(), "bytes": catalog_file.stat().st_size},
        "counts": {**counts, "referencedBlobs": report.blobs},
        "bytes": {"referenced": report.referenced_bytes, "copied": report.copied_bytes,
                  "linked": report.linked_bytes},
        "blobStores": stores,
        "files": sorted(p.name for p in (partial / FILES).iterdir()),
        "config": CONFIG if config_path is not None else None,
        "problems": report.problems,
    }


def _write_json(path: Path, value: Any) -> None:
    with open(path, "w") as handle:
        json.dump(value, handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
