"""The catalog's statements, written once in the SQL that SQLite and PostgreSQL both speak.

:class:`SqlCatalog` holds every query; a subclass supplies connections, transactions and ``_execute``
(statements use ``?`` placeholders; the PostgreSQL catalog rewrites them). What differs between the two
engines stays in the subclass: how ``transaction()`` serialises writers (``BEGIN IMMEDIATE`` in SQLite, an
advisory lock in PostgreSQL), a JSON path expression, the migrations. Hence the subset used here: upserts
with ``ON CONFLICT``, ``RETURNING``, no ``INSERT OR ...``, quoted ``"user"``, no NUL characters in
parameters (PostgreSQL text cannot hold them).
"""

from __future__ import annotations

import abc
import json
import time
from typing import Any, Iterator, Mapping, Protocol, Sequence

from stowage.catalog.base import (Catalog, DirectoryEntry, Page, RemoteStatus, decode_resume_key,
                                  decode_row_id_token, directory_end, encode_resume_key)
from stowage.catalog.sql_rows import ASSET_COLUMNS, COMPONENT_COLUMNS, asset_from_row, component_from_row
from stowage.catalog.sql_search import SqlSearch
from stowage.errors import Conflict
from stowage.models import Asset, AssetKind, BlobInfo, Component


class Rows(Protocol):
    """What ``_execute`` returns: the sqlite3 cursor, or the PostgreSQL catalog's fetched result."""

    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class SqlCatalog(SqlSearch, Catalog):
    @abc.abstractmethod
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        """Run one statement (in the caller's transaction, if any) and return its rows."""
    # -- repositories ---------------------------------------------------------------------------------
    def save_repository(self, name: str, format: str, type: str, config: Mapping[str, Any]) -> None:
        self._execute(
            "INSERT INTO repositories (name, format, type, config) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET format = excluded.format, type = excluded.type, "
            "config = excluded.config, revision = repositories.revision + 1",
            (name, format, type, json.dumps(config, sort_keys=True)))

    def get_repository(self, name: str) -> Mapping[str, Any] | None:
        row = self._execute("SELECT config FROM repositories WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else None

    def list_repositories(self) -> list[Mapping[str, Any]]:
        return [json.loads(row[0]) for row in self._execute("SELECT config FROM repositories ORDER BY name")]

    def delete_repository(self, name: str) -> None:
        with self.transaction():
            self._execute("UPDATE blobs SET created = ? WHERE sha256 IN "
                          "(SELECT blob_sha256 FROM assets WHERE repository = ?)", (time.time(), name))
            for table in ("assets", "components", "negative_cache"):
                self._execute(f"DELETE FROM {table} WHERE repository = ?", (name,))
            self._execute("DELETE FROM remote_status WHERE repository = ?", (name,))
            self._execute("DELETE FROM repositories WHERE name = ?", (name,))

    def revision(self, repository: str) -> int:
        row = self._execute("SELECT revision FROM repositories WHERE name = ?", (repository,)).fetchone()
        return row[0] if row else 0

    def bump_revision(self, repository: str) -> int:
        row = self._execute("UPDATE repositories SET revision = revision + 1 WHERE name = ? RETURNING revision",
                            (repository,)).fetchone()
        return row[0] if row else 0

    # -- assets ---------------------------------------------------------------------------------------
    def get_asset(self, repository: str, path: str) -> Asset | None:
        row = self._execute(f"SELECT {ASSET_COLUMNS} FROM assets WHERE repository = ? AND path = ?",
                            (repository, path)).fetchone()
        return asset_from_row(row) if row else None

    def get_asset_by_id(self, asset_id: int) -> Asset | None:
        row = self._execute(f"SELECT {ASSET_COLUMNS} FROM assets WHERE id = ?", (asset_id,)).fetchone()
        return asset_from_row(row) if row else None

    def put_asset(self, asset: Asset, blob: BlobInfo, blob_store: str, *, overwrite: bool) -> Asset:
        now = time.time()
        with self.transaction():
            # Refreshing ``created`` keeps a blob that is being re-referenced out of the collector's grace window.
            digests = blob.digests
            self._execute("INSERT INTO blobs (sha256, store, size, created, md5, sha1, sha512) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?) "
                          "ON CONFLICT (sha256) DO UPDATE SET created = excluded.created, "
                          "md5 = COALESCE(excluded.md5, blobs.md5), sha1 = COALESCE(excluded.sha1, blobs.sha1), "
                          "sha512 = COALESCE(excluded.sha512, blobs.sha512)",
                          (blob.sha256, blob_store, blob.size, now, digests.get("md5"), digests.get("sha1"),
                           digests.get("sha512")))
            existing = self.get_asset(asset.repository, asset.path)
            if existing is not None and not overwrite:
                raise Conflict(f"{asset.path} already exists in {asset.repository}")
            if existing is not None and existing.blob_sha256 != blob.sha256:
                self._touch_blobs([existing.blob_sha256], now)
            created = existing.created if existing else (asset.created or now)
            row = self._execute(
                f"INSERT INTO assets (repository, path, blob_sha256, size, content_type, kind, component_id, "
                f"created, last_updated, attributes, fetched_at, upstream_etag, upstream_last_modified, "
                f"invalidated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0) "
                f"ON CONFLICT (repository, path) DO UPDATE SET blob_sha256 = excluded.blob_sha256, "
                f"size = excluded.size, content_type = excluded.content_type, kind = excluded.kind, "
                f"component_id = excluded.component_id, last_updated = excluded.last_updated, "
                f"attributes = excluded.attributes, fetched_at = excluded.fetched_at, "
                f"upstream_etag = excluded.upstream_etag, "
                f"upstream_last_modified = excluded.upstream_last_modified, invalidated = 0 "
                f"RETURNING {ASSET_COLUMNS}",
                (asset.repository, asset.path, blob.sha256, blob.size, asset.content_type, asset.kind.value,
                 asset.component_id, created, now, json.dumps(dict(asset.attributes)), asset.fetched_at,
                 asset.upstream_etag, asset.upstream_last_modified)).fetchone()
            self.bump_revision(asset.repository)
            return asset_from_row(row)

    def update_asset(self, asset: Asset) -> Asset:
        row = self._execute(
            f"UPDATE assets SET content_type = ?, component_id = ?, attributes = ?, fetched_at = ?, "
            f"upstream_etag = ?, upstream_last_modified = ?, invalidated = ? WHERE repository = ? AND path = ? "
            f"RETURNING {ASSET_COLUMNS}",
            (asset.content_type, asset.component_id, json.dumps(dict(asset.attributes)), asset.fetched_at,
             asset.upstream_etag, asset.upstream_last_modified, int(asset.invalidated), asset.repository,
             asset.path)).fetchone()
        if row is None:
            raise Conflict(f"{asset.path} vanished from {asset.repository} while it was being updated")
        return asset_from_row(row)

    def record_downloads(self, downloads: Sequence[tuple[int, float]], older_than: float) -> int:
        if not downloads:
            return 0
        with self.transaction():
            changed = 0
            for asset_id, when in downloads:
                changed += self._execute(
                    "UPDATE assets SET last_downloaded = ? WHERE id = ? AND "
                    "(last_downloaded IS NULL OR last_downloaded < ?)", (when, asset_id, older_than)).rowcount
            return changed

    def delete_asset(self, repository: str, path: str) -> Asset | None:
        with self.transaction():
            row = self._execute(f"DELETE FROM assets WHERE repository = ? AND path = ? RETURNING {ASSET_COLUMNS}",
                                (repository, path)).fetchone()
            if row is None:
                return None
            asset = asset_from_row(row)
            self._touch_blobs([asset.blob_sha256])
            self._drop_empty_component(asset.component_id)
            self.bump_revision(repository)
            return asset

    def _touch_blobs(self, digests: Sequence[str], now: float | None = None) -> None:
        """Restart the collector's grace period of blobs an asset stopped referencing just now.

        Whoever read the asset a moment ago may be about to record the same digest elsewhere (a Docker
        cross-repository mount, a copy); the grace period must count from the last reference, not from
        the first upload.
        """
        for sha256 in set(digests):
            self._execute("UPDATE blobs SET created = ? WHERE sha256 = ?", (now or time.time(), sha256))

    def _drop_empty_component(self, component_id: int | None) -> None:
        if component_id is None:
            return
        self._execute("DELETE FROM components WHERE id = ? AND NOT EXISTS "
                      "(SELECT 1 FROM assets WHERE component_id = ?)", (component_id, component_id))

    def list_assets(self, repository: str, *, prefix: str = "", kind: AssetKind | None = None,
                    component_id: int | None = None, continuation_token: str | None = None,
                    limit: int | None = None) -> Page:
        where, params = ["repository = ?"], [repository]
        if prefix:
            # Range instead of LIKE: paths may contain % and _.
            where.append("path >= ? AND path < ?")
            params += [prefix, prefix + "\U0010ffff"]
        if kind is not None:
            where.append("kind = ?")
            params.append(kind.value)
        if component_id is not None:
            where.append("component_id = ?")
            params.append(component_id)
        if continuation_token:
            where.append("path > ?")
            params.append(decode_resume_key(continuation_token))
        sql = f"SELECT {ASSET_COLUMNS} FROM assets WHERE {' AND '.join(where)} ORDER BY path"
        if limit:
            sql += f" LIMIT {int(limit) + 1}"
        items = [asset_from_row(row) for row in self._execute(sql, params)]
        token = None
        if limit and len(items) > limit:
            items = items[:limit]
            token = encode_resume_key(items[-1].path)
        return Page(items, token)

    def list_directory(self, repository: str, prefix: str = "", *, continuation_token: str | None = None,
                       limit: int = 500) -> Page:
        # A skip-scan over the (repository, path) index: read files in growing batches; on meeting a
        # sub-directory, jump past all of its paths. A page costs about one seek per sub-directory.
        resume = decode_resume_key(continuation_token) if continuation_token else prefix
        end = prefix + "\U0010ffff"
        entries: list[DirectoryEntry] = []
        batch = 16
        sql = f"SELECT {ASSET_COLUMNS} FROM assets WHERE repository = ? AND path {{}} ? AND path < ? ORDER BY path LIMIT ?"
        while True:
            # "after this file" is the file's path + NUL; PostgreSQL text cannot hold NUL: ask for ``>``.
            after = resume.endswith("\x00")
            rows = self._execute(sql.format(">" if after else ">="),
                                 (repository, resume[:-1] if after else resume, end, batch)).fetchall()
            for row in rows:
                child, slash, _ = row[2][len(prefix):].partition("/")
                if len(entries) == limit:
                    return Page(entries, encode_resume_key(resume))
                if slash:
                    entries.append(DirectoryEntry(child))
                    resume = directory_end(prefix, child)
                    batch = 16
                    break
                entries.append(DirectoryEntry(child, asset_from_row(row)))
                resume = row[2] + "\x00"
            else:
                if len(rows) < batch:
                    return Page(entries, None)
                batch = min(batch * 2, 1024)

    def invalidate_assets(self, repository: str, kind: AssetKind | None = AssetKind.METADATA) -> int:
        if kind is None:
            cur = self._execute("UPDATE assets SET invalidated = 1 WHERE repository = ?", (repository,))
        else:
            cur = self._execute("UPDATE assets SET invalidated = 1 WHERE repository = ? AND kind = ?",
                                (repository, kind.value))
        return cur.rowcount

    # -- components -----------------------------------------------------------------------------------
    def ensure_component(self, component: Component) -> Component:
        with self.transaction():
            self._execute(
                "INSERT INTO components (repository, format, grp, name, version, created, attributes) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (component.repository, component.format, component.group, component.name, component.version,
                 component.created or time.time(), json.dumps(dict(component.attributes))))
            row = self._execute(
                f"SELECT {COMPONENT_COLUMNS} FROM components WHERE repository = ? AND grp = ? AND name = ? "
                f"AND version = ?",
                (component.repository, component.group, component.name, component.version)).fetchone()
            return component_from_row(row)

    def update_component(self, component: Component) -> Component:
        row = self._execute(f"UPDATE components SET attributes = ? WHERE id = ? RETURNING {COMPONENT_COLUMNS}",
                            (json.dumps(dict(component.attributes)), component.id)).fetchone()
        if row is None:
            raise Conflict(f"component {component.name} {component.version} no longer exists")
        self.bump_revision(component.repository)
        return component_from_row(row)

    def get_component(self, component_id: int) -> Component | None:
        row = self._execute(f"SELECT {COMPONENT_COLUMNS} FROM components WHERE id = ?",
                            (component_id,)).fetchone()
        return component_from_row(row) if row else None

    def find_components(self, repository: str, *, name: str | None = None, group: str | None = None,
                        version: str | None = None) -> list[Component]:
        where, params = ["repository = ?"], [repository]
        for column, value in (("name", name), ("grp", group), ("version", version)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = f"SELECT {COMPONENT_COLUMNS} FROM components WHERE {' AND '.join(where)} ORDER BY id"
        return [component_from_row(row) for row in self._execute(sql, params)]

    def list_components(self, repository: str, *, continuation_token: str | None = None,
                        limit: int | None = None) -> Page:
        after = decode_row_id_token(continuation_token) if continuation_token else 0
        sql = f"SELECT {COMPONENT_COLUMNS} FROM components WHERE repository = ? AND id > ? ORDER BY id"
        if limit:
            sql += f" LIMIT {int(limit) + 1}"
        items = [component_from_row(row) for row in self._execute(sql, (repository, after))]
        token = None
        if limit and len(items) > limit:
            items = items[:limit]
            token = encode_resume_key(str(items[-1].id))
        return Page(items, token)

    def delete_component(self, component_id: int) -> list[Asset]:
        with self.transaction():
            rows = self._execute(f"DELETE FROM assets WHERE component_id = ? RETURNING {ASSET_COLUMNS}",
                                 (component_id,)).fetchall()
            self._touch_blobs([r[3] for r in rows])
            row = self._execute("DELETE FROM components WHERE id = ? RETURNING repository",
                                (component_id,)).fetchone()
            if row:
                self.bump_revision(row[0])
            return [asset_from_row(r) for r in rows]

    # -- proxy cache state ----------------------------------------------------------------------------
    def remember_missing(self, repository: str, path: str, until: float) -> None:
        self._execute("INSERT INTO negative_cache (repository, path, expires) VALUES (?, ?, ?) "
                      "ON CONFLICT (repository, path) DO UPDATE SET expires = excluded.expires",
                      (repository, path, until))

    def known_missing(self, repository: str, path: str, now: float) -> bool:
        row = self._execute("SELECT expires FROM negative_cache WHERE repository = ? AND path = ?",
                            (repository, path)).fetchone()
        return bool(row and row[0] > now)

    def forget_missing(self, repository: str, path: str | None = None) -> None:
        if path is None:
            self._execute("DELETE FROM negative_cache WHERE repository = ?", (repository,))
        else:
            self._execute("DELETE FROM negative_cache WHERE repository = ? AND path = ?", (repository, path))

    def remote_status(self, repository: str) -> RemoteStatus:
        row = self._execute("SELECT failures, blocked_until, last_error FROM remote_status WHERE repository = ?",
                            (repository,)).fetchone()
        return RemoteStatus(*row) if row else RemoteStatus()

    def save_remote_status(self, repository: str, status: RemoteStatus) -> None:
        self._execute("INSERT INTO remote_status (repository, failures, blocked_until, last_error) "
                      "VALUES (?, ?, ?, ?) ON CONFLICT (repository) DO UPDATE SET failures = excluded.failures, "
                      "blocked_until = excluded.blocked_until, last_error = excluded.last_error",
                      (repository, status.failures, status.blocked_until, status.last_error))

    # -- coordination ---------------------------------------------------------------------------------
    def acquire_lease(self, key: str, owner: str, ttl: float) -> bool:
        now = time.time()
        row = self._execute(
            "INSERT INTO leases (key, owner, expires) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
            "owner = excluded.owner, expires = excluded.expires WHERE leases.expires < ? OR leases.owner = ? "
            "RETURNING owner", (key, owner, now + ttl, now, owner)).fetchone()
        return row is not None

    def release_lease(self, key: str, owner: str) -> None:
        self._execute("DELETE FROM leases WHERE key = ? AND owner = ?", (key, owner))

    def lease_holder(self, key: str) -> str | None:
        row = self._execute("SELECT owner FROM leases WHERE key = ? AND expires >= ?", (key, time.time())).fetchone()
        return row[0] if row else None

    # -- blob pins ------------------------------------------------------------------------------------
    def pin_blobs(self, pin_id: str, purpose: str, ttl: float) -> float:
        now = time.time()
        row = self._execute(
            "INSERT INTO blob_pins (id, purpose, started, expires) VALUES (?, ?, ?, ?) ON CONFLICT (id) "
            "DO UPDATE SET expires = excluded.expires RETURNING started", (pin_id, purpose, now, now + ttl)).fetchone()
        return float(row[0])

    def unpin_blobs(self, pin_id: str) -> None:
        self._execute("DELETE FROM blob_pins WHERE id = ?", (pin_id,))

    def oldest_blob_pin(self) -> float | None:
        row = self._execute("SELECT MIN(started) FROM blob_pins WHERE expires >= ?", (time.time(),)).fetchone()
        return row[0] if row and row[0] is not None else None

    def recorded_blobs(self) -> Iterator[str]:
        for (sha256,) in self._execute("SELECT sha256 FROM blobs"):
            yield sha256

    # -- documents ------------------------------------------------------------------------------------
    def get_document(self, namespace: str, key: str) -> Any | None:
        row = self._execute("SELECT value FROM documents WHERE namespace = ? AND key = ?",
                            (namespace, key)).fetchone()
        return json.loads(row[0]) if row else None

    def put_document(self, namespace: str, key: str, value: Any) -> None:
        self._execute("INSERT INTO documents (namespace, key, value, updated) VALUES (?, ?, ?, ?) "
                      "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, updated = excluded.updated",
                      (namespace, key, json.dumps(value), time.time()))

    def delete_document(self, namespace: str, key: str) -> bool:
        return self._execute("DELETE FROM documents WHERE namespace = ? AND key = ?", (namespace, key)).rowcount > 0

    def list_documents(self, namespace: str, *, prefix: str = "") -> list[tuple[str, Any]]:
        rows = self._execute("SELECT key, value FROM documents WHERE namespace = ? AND key >= ? AND key < ? "
                             "ORDER BY key", (namespace, prefix, prefix + "\U0010ffff"))
        return [(key, json.loads(value)) for key, value in rows]

    # -- audit trail ----------------------------------------------------------------------------------
    def append_audit(self, event: Mapping[str, Any]) -> None:
        self._execute('INSERT INTO audit (timestamp, "user", address, domain, action, target, repository, result, '
                      "attributes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (event["timestamp"], event.get("user"), event.get("address"), event["domain"],
                       event["action"], event["target"], event.get("repository"), event["result"],
                       json.dumps(event.get("attributes") or {})))

    def prune_audit(self, before: float) -> int:
        return self._execute("DELETE FROM audit WHERE timestamp < ?", (before,)).rowcount

    def list_audit(self, *, user: str | None = None, action: str | None = None, repository: str | None = None,
                   since: float | None = None, until: float | None = None, before_id: int | None = None,
                   limit: int = 100) -> list[dict[str, Any]]:
        where, params = ["1 = 1"], []
        for column, value in (('"user"', user), ("repository", repository)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if action is not None:
            if action.endswith("*"):
                prefix = action[:-1]
                where.append("action >= ? AND action < ?")
                params += [prefix, prefix + "\U0010ffff"]
            else:
                where.append("action = ?")
                params.append(action)
        for clause, value in (("timestamp >= ?", since), ("timestamp < ?", until), ("id < ?", before_id)):
            if value is not None:
                where.append(clause)
                params.append(value)
        rows = self._execute('SELECT id, timestamp, "user", address, domain, action, target, repository, result, '
                             f"attributes FROM audit WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
                             (*params, limit))
        columns = ("id", "timestamp", "user", "address", "domain", "action", "target", "repository", "result")
        return [{**dict(zip(columns, row[:9])), "attributes": json.loads(row[9])} for row in rows]

    # -- blobs ----------------------------------------------------------------------------------------
    def unreferenced_blobs(self, older_than: float) -> list[tuple[str, str]]:
        rows = self._execute("SELECT sha256, store FROM blobs b WHERE created < ? AND NOT EXISTS "
                             "(SELECT 1 FROM assets a WHERE a.blob_sha256 = b.sha256)", (older_than,))
        return [tuple(row) for row in rows]

    def forget_blob(self, sha256: str) -> None:
        self._execute("DELETE FROM blobs WHERE sha256 = ? AND NOT EXISTS "
                      "(SELECT 1 FROM assets WHERE blob_sha256 = ?)", (sha256, sha256))

    def blob_checksums(self, sha256s: Sequence[str]) -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        unique = list(dict.fromkeys(sha256s))
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            rows = self._execute(f"SELECT sha256, md5, sha1, sha512 FROM blobs WHERE sha256 IN "
                                 f"({','.join('?' * len(chunk))})", chunk)
            for sha256, md5, sha1, sha512 in rows:
                digests = {"sha256": sha256, "md5": md5, "sha1": sha1, "sha512": sha512}
                found[sha256] = {name: value for name, value in digests.items() if value}
        return found

    def record_blob_checksums(self, sha256: str, digests: Mapping[str, str]) -> None:
        self._execute("UPDATE blobs SET md5 = COALESCE(md5, ?), sha1 = COALESCE(sha1, ?), "
                      "sha512 = COALESCE(sha512, ?) WHERE sha256 = ?",
                      (digests.get("md5"), digests.get("sha1"), digests.get("sha512"), sha256))

    def blobs_missing_checksums(self, limit: int) -> list[tuple[str, str]]:
        rows = self._execute("SELECT sha256, store FROM blobs WHERE md5 IS NULL OR sha1 IS NULL OR sha512 IS NULL "
                             "LIMIT ?", (limit,))
        return [(sha256, store) for sha256, store in rows]

    def blob_store_usage(self, store: str) -> tuple[int, int]:
        row = self._execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM blobs WHERE store = ?", (store,)).fetchone()
        return int(row[0]), int(row[1])

    def blob_recorded(self, sha256: str) -> bool:
        return self._execute("SELECT 1 FROM blobs WHERE sha256 = ?", (sha256,)).fetchone() is not None

    def blob_created(self, sha256: str) -> float | None:
        row = self._execute("SELECT created FROM blobs WHERE sha256 = ?", (sha256,)).fetchone()
        return row[0] if row else None

    def blob_referenced(self, sha256: str) -> bool:
        return self._execute("SELECT 1 FROM assets WHERE blob_sha256 = ? LIMIT 1", (sha256,)).fetchone() is not None
