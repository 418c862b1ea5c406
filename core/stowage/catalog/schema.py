"""The core migration set of the SQLite catalog (sqlite-utils named migrations)."""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("stowage")


@migrations()
def m001_initial(db: Database) -> None:
    db.execute("""
        CREATE TABLE repositories (
            name TEXT PRIMARY KEY,
            format TEXT NOT NULL,
            type TEXT NOT NULL,
            config TEXT NOT NULL,
            revision INTEGER NOT NULL DEFAULT 0
        ) STRICT, WITHOUT ROWID
    """)
    db.execute("""
        CREATE TABLE blobs (
            sha256 TEXT PRIMARY KEY,
            store TEXT NOT NULL,
            size INTEGER NOT NULL,
            created REAL NOT NULL
        ) STRICT, WITHOUT ROWID
    """)
    db.execute("""
        CREATE TABLE components (
            id INTEGER PRIMARY KEY,
            repository TEXT NOT NULL,
            format TEXT NOT NULL,
            grp TEXT NOT NULL,
            name TEXT NOT NULL,
            version TEXT NOT NULL,
            created REAL NOT NULL,
            attributes TEXT NOT NULL DEFAULT '{}',
            UNIQUE (repository, grp, name, version)
        ) STRICT
    """)
    db.execute("CREATE INDEX components_name ON components (name, version)")
    db.execute("""
        CREATE TABLE assets (
            id INTEGER PRIMARY KEY,
            repository TEXT NOT NULL,
            path TEXT NOT NULL,
            blob_sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            content_type TEXT NOT NULL,
            kind TEXT NOT NULL,
            component_id INTEGER REFERENCES components (id),
            created REAL NOT NULL,
            last_updated REAL NOT NULL,
            attributes TEXT NOT NULL DEFAULT '{}',
            fetched_at REAL,
            upstream_etag TEXT,
            upstream_last_modified TEXT,
            invalidated INTEGER NOT NULL DEFAULT 0,
            UNIQUE (repository, path)
        ) STRICT
    """)
    db.execute("CREATE INDEX assets_blob ON assets (blob_sha256)")
    db.execute("CREATE INDEX assets_component ON assets (component_id)")
    db.execute("""
        CREATE TABLE negative_cache (
            repository TEXT NOT NULL,
            path TEXT NOT NULL,
            expires REAL NOT NULL,
            PRIMARY KEY (repository, path)
        ) STRICT, WITHOUT ROWID
    """)
    db.execute("""
        CREATE TABLE remote_status (
            repository TEXT PRIMARY KEY,
            failures INTEGER NOT NULL,
            blocked_until REAL NOT NULL,
            last_error TEXT NOT NULL
        ) STRICT, WITHOUT ROWID
    """)
    db.execute("""
        CREATE TABLE leases (
            key TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            expires REAL NOT NULL
        ) STRICT, WITHOUT ROWID
    """)
    db.execute("""
        CREATE TABLE documents (
            namespace TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            updated REAL NOT NULL,
            PRIMARY KEY (namespace, key)
        ) STRICT, WITHOUT ROWID
    """)


@migrations()
def m002_components_by_repository(db: Database) -> None:
    # list_components pages by (repository, id): without this index every page searched all of the
    # repository's components and sorted them (a REST listing of n components cost O(n^2 / page size);
    # the pypi root index reads every page on each rebuild).
    db.execute("CREATE INDEX components_repository_id ON components (repository, id)")


@migrations()
def m011_audit(db: Database) -> None:
    # The audit trail (stowage.audit): append-only, read newest first by id, filtered by user, action or
    # repository (each index ends with id so a filtered page is an index range scan) or by time.
    db.execute("""
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            timestamp REAL NOT NULL,
            user TEXT,
            address TEXT,
            domain TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            repository TEXT,
            result TEXT NOT NULL,
            attributes TEXT NOT NULL DEFAULT '{}'
        ) STRICT
    """)
    db.execute("CREATE INDEX audit_user ON audit (user, id)")
    db.execute("CREATE INDEX audit_action ON audit (action, id)")
    db.execute("CREATE INDEX audit_repository ON audit (repository, id)")
    db.execute("CREATE INDEX audit_timestamp ON audit (timestamp)")


@migrations()
def m012_last_downloaded(db: Database) -> None:
    # When each asset was last downloaded (200 or 304), written at most once per
    # ``lastDownloadedIntervalSeconds`` by a batch; cleanup's criteriaLastDownloaded reads it.
    db.execute("ALTER TABLE assets ADD COLUMN last_downloaded REAL")


@migrations()
def m018_blob_pins(db: Database) -> None:
    # Blob GC and backups run in different processes: a pin row is how a backup (or verify) tells every
    # collector "keep what was referenced when I started" (see stowage.compaction).
    db.execute("""
        CREATE TABLE blob_pins (
            id TEXT PRIMARY KEY,
            purpose TEXT NOT NULL,
            started REAL NOT NULL,
            expires REAL NOT NULL
        ) STRICT, WITHOUT ROWID
    """)
