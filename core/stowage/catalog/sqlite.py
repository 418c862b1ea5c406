"""The default catalog: one SQLite database in WAL mode, shared safely by several processes.

The statements are :class:`~stowage.catalog.sql.SqlCatalog`'s; this module supplies connections and
transactions. Each thread gets its own connection; writers take ``BEGIN IMMEDIATE`` so read-modify-write
sequences (write policy checks, lease acquisition) are serialised across processes, not just threads.
The schema is managed by sqlite-utils migrations (:mod:`stowage.catalog.schema`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import sqlite_utils

from stowage.catalog.schema import migrations
from stowage.catalog.sql import SqlCatalog
from stowage.catalog.sql_rows import ASSET_COLUMNS, asset_from_row
from stowage.catalog.sqlite_changes import AssetRowCache, WalChangeStamp
from stowage.models import Asset


_ASSET_BY_PATH = f"SELECT {ASSET_COLUMNS} FROM assets WHERE repository = ? AND path = ?"


class SqliteCatalog(SqlCatalog):
    def __init__(self, path: Path | str):
        self.path = str(path)
        self._local = threading.local()
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = self._connect()
        db = sqlite_utils.Database(conn, strict=True)
        migrations.apply(db)
        # Hot asset lookups from memory while nothing was committed (stowage.catalog.sqlite_changes).
        self._asset_rows = AssetRowCache(WalChangeStamp(self.path)) if self.path != ":memory:" else None

    # -- connections ----------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=60000")
        self._local.conn = conn
        self._local.depth = 0
        return conn

    @property
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        return conn if conn is not None else self._connect()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        conn = self._conn
        if self._local.depth:
            self._local.depth += 1
            try:
                yield
            finally:
                self._local.depth -= 1
            return
        conn.execute("BEGIN IMMEDIATE")
        self._local.depth = 1
        self._local.pending = []
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")
            pending, self._local.pending = self._local.pending, []
            self._local.depth = 0
            for callback in pending:  # outside the transaction: a callback may open its own
                callback()
        finally:
            self._local.depth = 0
            self._local.pending = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        if getattr(self._local, "depth", 0):
            self._local.pending.append(callback)
        else:
            callback()

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, params)

    def get_asset(self, repository: str, path: str) -> Asset | None:
        if self._asset_rows is None or getattr(self._local, "depth", 0):
            # inside a transaction this connection may hold writes the header does not show yet
            return super().get_asset(repository, path)
        row = self._asset_rows.row((repository, path),
                                   lambda: self._execute(_ASSET_BY_PATH, (repository, path)).fetchone())
        return asset_from_row(row) if row else None

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def snapshot(self, target: str) -> None:
        # One backup step (pages=-1) copies every page under a single read transaction: in WAL mode that
        # never blocks writers, and no writer can make it restart (a stepped backup restarts whenever
        # another connection writes, which under steady uploads may be forever).
        # The copy holds password hashes and tokens: readable by this user alone, whatever the umask.
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
        os.chmod(target, 0o600)
        destination = sqlite3.connect(target)
        try:
            self._conn.backup(destination, pages=-1)
            destination.execute("PRAGMA journal_mode=DELETE")
        finally:
            destination.close()
