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


@migrations()
def m010_token_identity(db: Database) -> None:
    """Tokens bound to identities and credential generations; the signing secret out of the catalog.

    Every user gets a random identity; every stored token is stamped with its user's identity and the
    current generation (so logged-in npm clients keep working), is given an expiry (90 days from now at
    most: tokens used to live forever) and the npm audience; tokens of deleted local users are dropped
    (a directory user's token stays bound to the directory's answer). The
    Docker token secret kept in the catalog (readable by anyone holding a copy of it) is deleted: the key
    now comes from ``[server] secretKey`` or a 0600 file in the data directory, and Docker tokens live
    minutes, so the ones it signed simply run out.
    """
    import json
    import secrets
    import time

    now = time.time()
    identities = {}
    for key, value in db.execute("SELECT key, value FROM documents WHERE namespace = 'security.users'").fetchall():
        user = json.loads(value)
        user.setdefault("identity", secrets.token_hex(16))
        user.setdefault("generation", 0)
        identities[key] = user["identity"]
        db.execute("UPDATE documents SET value = ? WHERE namespace = 'security.users' AND key = ?",
                   (json.dumps(user), key))
    for key, value in db.execute("SELECT key, value FROM documents WHERE namespace = 'security.tokens'").fetchall():
        old = json.loads(value)
        if "identity" in old:
            continue
        source = old.get("source") or "default"
        if source == "default" and old.get("user") not in identities:
            db.execute("DELETE FROM documents WHERE namespace = 'security.tokens' AND key = ?", (key,))
            continue
        expires = min(old.get("expires") or now + 90 * 86400, now + 90 * 86400)
        token = {"id": key[:24], "user_id": old["user"], "identity": identities.get(old["user"], "")
                 if source == "default" else "", "generation": 0, "kind": "npm", "audiences": ["npm"],
                 "created": old.get("created", now), "expires": expires, "last_used": None, "name_code": "",
                 "user_realm": "", "created_by": old["user"], "source": source}
        db.execute("UPDATE documents SET value = ? WHERE namespace = 'security.tokens' AND key = ?",
                   (json.dumps(token), key))
    db.execute("DELETE FROM documents WHERE namespace = 'docker' AND key = 'token-secret'")
