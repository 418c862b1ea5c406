"""``stowage restore``: a new data directory from one generation of a backup directory.

The restored directory is what the backed-up server had at the generation's snapshot: the catalog copy
(its coordination state — leases, blob pins — cleared, since no process holds them any more), every
blob that catalog references put back into its blob store, and the data directory's own files (0600).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

from attrs import define, field

from stowage.backup.copying import COPIED, LINKED, place_file, same_file_system
from stowage.backup.layout import CATALOG, CONFIG, FILES, FORMAT_VERSION, BackupDirectory, referenced_blobs
from stowage.errors import ConfigurationError
from stowage.progress import RunProgress, human_bytes

log = logging.getLogger(__name__)

#: where ``restore`` puts the backed-up configuration file inside the new data directory.
RESTORED_CONFIG = "stowage.toml"


@define
class RestoreReport:
    generation: str
    data_dir: Path
    blobs: int = 0
    bytes: int = 0
    copied: int = 0
    linked: int = 0
    seconds: float = 0.0
    config: Path | None = None
    warnings: list[str] = field(factory=list)

    def summary(self) -> str:
        text = (f"restored generation {self.generation} into {self.data_dir}: {self.blobs} blobs "
                f"({human_bytes(self.bytes)}), {self.copied} copied, {self.linked} hard-linked, "
                f"{self.seconds:.1f} s")
        if self.config is not None:
            text += f"; configuration in {self.config}"
        return text


def run_restore(source: Path | str, data_dir: Path | str, *, generation: str | None = None,
                config_path: Path | str | None = None, link: bool = False,
                progress: RunProgress | None = None) -> RestoreReport:
    from stowage.pluginmanager import make_plugin_manager
    from stowage.serialization import make_converter
    from stowage.settings import load_config_file
    from stowage.stowage import Stowage

    started = time.monotonic()
    progress = progress or RunProgress(show=False)
    directory = BackupDirectory(source)
    name = directory.resolve(generation)
    generation_dir = directory.generation_dir(name)
    manifest = directory.manifest(name)
    if manifest.get("formatVersion", 0) > FORMAT_VERSION:
        raise ConfigurationError(f"generation {name} was written by a newer Stowage (backup format "
                                 f"{manifest['formatVersion']}); restore it with that version")
    target = Path(data_dir).expanduser().resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigurationError(f"{target} is not empty; restore only into a new or empty directory")
    _check_catalog(generation_dir / CATALOG, manifest)
    report = RestoreReport(generation=name, data_dir=target)

    if config_path is None and (generation_dir / CONFIG).is_file():
        config_path = generation_dir / CONFIG
    config = load_config_file(config_path, make_converter(), overrides={"data_dir": str(target)})
    settings = config.server
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(target, 0o700)
    for path in sorted((generation_dir / FILES).iterdir()):
        shutil.copyfile(path, target / path.name)
        os.chmod(target / path.name, 0o600)
    if config_path is not None:
        report.config = target / RESTORED_CONFIG
        shutil.copyfile(config_path, report.config)
        os.chmod(report.config, 0o600)
    catalog_file = Path(settings.catalog.path) if settings.catalog.path else target / "db" / "catalog.sqlite"
    if catalog_file.exists():
        raise ConfigurationError(f"{catalog_file} already exists; restore only into a new catalog")
    catalog_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.copyfile(generation_dir / CATALOG, catalog_file)
    os.chmod(catalog_file, 0o600)
    _clear_coordination_state(catalog_file)

    stowage = Stowage(settings, make_plugin_manager(strict=False), blob_stores=config.blob_stores)
    try:
        try:
            _refuse_shared_stores(stowage, target)
        except ConfigurationError:
            stowage.close()
            _undo(target, catalog_file)
            raise
        _warn_missing_formats(stowage, report)
        _restore_blobs(stowage, directory, referenced_blobs(catalog_file), report, link=link, progress=progress)
    finally:
        stowage.close()
    report.seconds = time.monotonic() - started
    for warning in report.warnings:
        log.warning("restore: %s", warning)
    return report


def _refuse_shared_stores(stowage: Any, target: Path) -> None:
    """A file store outside the new data directory that already holds blobs belongs to another server
    (most likely the backed-up one, still running): sharing it would let either one's blob GC delete the
    other's blobs. Its path must be changed in the configuration given with ``--config``."""
    for name, store in stowage.blob_stores().items():
        root, blob_dir = getattr(store, "root", None), getattr(store, "blob_dir", None)
        if root is None or blob_dir is None or Path(root).resolve().is_relative_to(target):
            continue
        if any(Path(blob_dir).iterdir()):
            raise ConfigurationError(f"blob store {name} is configured at {root}, outside {target}, and already "
                                     f"holds blobs (another server's?); give restore a --config whose blob "
                                     f"store path is new, e.g. relative to the data directory")


def _undo(target: Path, catalog_file: Path) -> None:
    """Remove what this restore created in the (new or empty) target."""
    for path in list(target.iterdir()):
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    if not catalog_file.resolve().is_relative_to(target):
        catalog_file.unlink(missing_ok=True)


def _check_catalog(catalog_file: Path, manifest: dict[str, Any]) -> None:
    digest = hashlib.sha256()
    with open(catalog_file, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    expected = manifest["catalog"]["sha256"]
    if digest.hexdigest() != expected:
        raise ConfigurationError(f"{catalog_file} is damaged: its sha256 is {digest.hexdigest()}, the manifest "
                                 f"says {expected}; restore another generation")


def _clear_coordination_state(catalog_file: Path) -> None:
    conn = sqlite3.connect(catalog_file, isolation_level=None)
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table in ("leases", "blob_pins"):
            if table in tables:
                conn.execute(f"DELETE FROM {table}")
    finally:
        conn.close()


def _warn_missing_formats(stowage: Any, report: RestoreReport) -> None:
    used = {r["format"] for r in stowage.catalog.list_repositories()}
    for missing in sorted(used - set(stowage.plugins.formats)):
        report.warnings.append(f"format {missing!r} is used by restored repositories but its plugin is not "
                               f"installed here; those repositories answer 503 until it is")


def _restore_blobs(stowage: Any, directory: BackupDirectory, blobs: list[tuple[str, str, int]],
                   report: RestoreReport, *, link: bool, progress: RunProgress) -> None:
    stores = stowage.blob_stores()
    report.blobs = len(blobs)
    report.bytes = sum(size for _, _, size in blobs)
    progress.phase("restore", files=len(blobs), total_bytes=report.bytes)
    for store_name, store in stores.items():
        root = getattr(store, "root", None)
        if root is not None and not Path(root).resolve().is_relative_to(report.data_dir):
            report.warnings.append(f"blob store {store_name} lives outside the data directory, at {root}; its "
                                   f"blobs were restored there")
    for sha256, store_name, size in blobs:
        store = stores.get(store_name) or stores.get("default")
        if store_name not in stores:
            report.warnings.append(f"blob store {store_name} is not configured; blob {sha256} went to default")
        source = directory.blob_path(sha256)
        path_for = getattr(store, "path_for", None)
        try:
            if path_for is not None:
                tmp_dir = getattr(store, "tmp_dir")
                outcome = place_file(source, path_for(sha256), tmp_dir,
                                     link=link and same_file_system(source, tmp_dir), size=size)
            else:
                with open(source, "rb") as stream:
                    store.store(stream, length=size, expected={"sha256": sha256})
                outcome = COPIED
        except FileNotFoundError:
            report.warnings.append(f"blob {sha256} is missing from the backup; its assets answer 404 "
                                   f"(`stowage verify` lists them)")
            continue
        if outcome == LINKED:
            report.linked += 1
        elif outcome == COPIED:
            report.copied += 1
        progress.advance(1, size)
