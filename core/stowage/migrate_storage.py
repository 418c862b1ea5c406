"""``stowage migrate-storage``: move a single-node installation (SQLite catalog, any blob stores) into a
PostgreSQL catalog and one blob store, for a cluster.

Three phases, each safe to run again after an interruption (the old server must be stopped, so the
source does not change underneath):

1. every blob the catalog records is copied into the target blob store, verified against its sha256 as
   it is written; blobs the target already holds are skipped;
2. every catalog table is copied into PostgreSQL (rows upserted by primary key, so a re-run converges
   to the source), with every repository's ``storage.blobStoreName`` and every blob's store rewritten
   to the target; identity sequences continue after the copied ids;
3. every blob the new catalog records is read back from the target store and its sha256 checked.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterator, Sequence

import psycopg
from attrs import define, field

from stowage.blobstore import BlobStore
from stowage.catalog.sql import SqlCatalog
from stowage.errors import ConfigurationError, DigestMismatch, InvalidContent, NotFound
from stowage.progress import RunProgress

BATCH = 1000
#: copied first (others reference them); the rest follow in name order.
FIRST_TABLES = ("repositories", "blobs", "components", "assets")
SKIPPED_TABLES = ("_sqlite_migrations",)


@define
class MigrationReport:
    blobs_copied: int = 0
    blobs_present: int = 0
    bytes_copied: int = 0
    rows: dict[str, int] = field(factory=dict)
    blobs_verified: int = 0
    problems: list[str] = field(factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        rows = ", ".join(f"{table} {count}" for table, count in self.rows.items())
        return (f"migrate-storage: {self.blobs_copied} blobs copied ({self.bytes_copied} bytes), "
                f"{self.blobs_present} already there; rows: {rows}; {self.blobs_verified} blobs verified; "
                + ("OK" if self.ok else f"{len(self.problems)} problem(s)"))


def run_migrate_storage(stowage: Any, catalog_url: str, target_store: str, *,
                        progress: RunProgress) -> MigrationReport:
    """Copy ``stowage``'s (the old installation, opened for maintenance) catalog and blobs."""
    source = stowage.catalog
    if not isinstance(source, SqlCatalog) or not hasattr(source, "_conn"):
        raise ConfigurationError("migrate-storage moves an SQLite catalog; this installation's is "
                                 f"{type(source).__name__}")
    if not catalog_url.startswith(("postgresql://", "postgres://")):
        raise ConfigurationError(f"--to-catalog must be a postgresql:// URL, not {catalog_url!r}")
    target = stowage.blob_store(target_store)  # ConfigurationError names it when the installation lacks it
    from stowage.catalog.postgres import PostgresCatalog

    PostgresCatalog(catalog_url, pool_size=1).close()  # creates or migrates the schema
    report = MigrationReport()
    copy_blobs(stowage, source, target, progress, report)
    with psycopg.connect(catalog_url) as conn:
        copy_tables(source, conn, target_store, progress, report)
    verify_blobs(catalog_url, target, progress, report)
    return report


def configured_elsewhere(config_path: str | None, target_store: str) -> list[str]:
    """Repositories the configuration file declares on another blob store: a node started with that file
    would point them back at it (the file's repositories are applied at every start)."""
    if not config_path:
        return []
    from stowage.serialization import make_converter
    from stowage.settings import load_config_file

    config = load_config_file(config_path, make_converter())
    return [str(r.get("name")) for r in config.repositories
            if (r.get("storage") or {}).get("blobStoreName", "default") != target_store]


def copy_blobs(stowage: Any, source: SqlCatalog, target: BlobStore, progress: RunProgress,
               report: MigrationReport) -> None:
    blobs = source._execute("SELECT sha256, store, size FROM blobs ORDER BY sha256").fetchall()
    progress.phase("copy blobs", files=len(blobs), total_bytes=sum(size for _, _, size in blobs))
    for sha256, store, size in blobs:
        if target.exists(sha256):
            report.blobs_present += 1
            progress.advance(1, size)
            continue
        try:
            with stowage.blob_store(store).open(sha256) as stream:
                target.store(stream, length=size, expected={"sha256": sha256})
        except NotFound:
            report.problems.append(f"blob {sha256} (store {store}) is missing from the old installation")
        except (DigestMismatch, InvalidContent) as error:  # the old copy is damaged
            report.problems.append(f"blob {sha256} (store {store}) could not be copied: {error}")
        else:
            report.blobs_copied += 1
            report.bytes_copied += size
        progress.advance(1, size)


def _tables(source: SqlCatalog) -> list[str]:
    names = [row[0] for row in source._execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                                "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    names = [name for name in names if name not in SKIPPED_TABLES]
    return [t for t in FIRST_TABLES if t in names] + [t for t in names if t not in FIRST_TABLES]


def _rewrite(table: str, columns: Sequence[str], row: Sequence[Any], target_store: str) -> tuple:
    values = list(row)
    if table == "blobs":
        values[columns.index("store")] = target_store
    elif table == "repositories":
        config = json.loads(values[columns.index("config")])
        config.setdefault("storage", {})["blobStoreName"] = target_store
        values[columns.index("config")] = json.dumps(config, sort_keys=True)
    return tuple(values)


def _rows(source: SqlCatalog, table: str, columns: Sequence[str]) -> Iterator[list[tuple]]:
    cursor = source._conn.execute(f"SELECT {', '.join(_quoted(columns))} FROM {table}")
    while batch := cursor.fetchmany(BATCH):
        yield batch


def _quoted(columns: Sequence[str]) -> list[str]:
    return [f'"{column}"' for column in columns]


def copy_tables(source: SqlCatalog, conn: psycopg.Connection, target_store: str, progress: RunProgress,
                report: MigrationReport) -> None:
    tables = _tables(source)
    counts = {t: source._execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}
    progress.phase("copy catalog", files=sum(counts.values()), total_bytes=0)
    for table in tables:
        info = source._execute(f"PRAGMA table_info({table})").fetchall()
        columns = [column[1] for column in info]
        keys = [column[1] for column in sorted(info, key=lambda c: c[5]) if column[5]]
        updates = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c not in keys)
        sql = (f"INSERT INTO {table} ({', '.join(_quoted(columns))}) "
               f"VALUES ({', '.join(['%s'] * len(columns))}) ON CONFLICT ({', '.join(_quoted(keys))}) "
               + (f"DO UPDATE SET {updates}" if updates else "DO NOTHING"))
        with conn.transaction():
            with conn.cursor() as cursor:
                for batch in _rows(source, table, columns):
                    cursor.executemany(sql, [_rewrite(table, columns, row, target_store) for row in batch])
                    progress.advance(len(batch))
            sequence = conn.execute("SELECT pg_get_serial_sequence(%s, 'id') FROM information_schema.columns "
                                    "WHERE table_name = %s AND column_name = 'id' AND is_identity = 'YES'",
                                    (table, table)).fetchone()
            if sequence:  # new rows continue after the copied ids
                conn.execute(f"SELECT setval(%s, GREATEST((SELECT MAX(id) FROM {table}), 1))", (sequence[0],))
        report.rows[table] = counts[table]


def verify_blobs(catalog_url: str, target: BlobStore, progress: RunProgress, report: MigrationReport) -> None:
    with psycopg.connect(catalog_url) as conn:
        blobs = conn.execute("SELECT sha256, size FROM blobs ORDER BY sha256").fetchall()
    progress.phase("verify blobs", files=len(blobs), total_bytes=sum(size for _, size in blobs))
    for sha256, size in blobs:
        digest = hashlib.sha256()
        try:
            with target.open(sha256) as stream:
                while chunk := stream.read(1024 * 1024):
                    digest.update(chunk)
        except NotFound:
            report.problems.append(f"blob {sha256} is missing from blob store {target.name}")
        else:
            if digest.hexdigest() != sha256:
                report.problems.append(f"blob {sha256} in blob store {target.name} has sha256 {digest.hexdigest()}")
            else:
                report.blobs_verified += 1
        progress.advance(1, size)
