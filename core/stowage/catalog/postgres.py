"""The PostgreSQL catalog: several nodes share one database.

The statements are :class:`~stowage.catalog.sql.SqlCatalog`'s. Connections come from a psycopg pool:
a statement outside a transaction borrows one for itself (autocommit); ``transaction()`` keeps one for
the thread until it ends, and nested uses join it, as in SQLite.

Writers are serialised as SQLite's ``BEGIN IMMEDIATE`` serialises them: every ``transaction()`` first
takes one transaction-level advisory lock, so a read-modify-write inside it (the write policy's "does the
path exist?" before ``put_asset``, a task's schedule check, a yum regeneration's coalescing) sees every
earlier writer's result and no later one, on whichever node it runs. Single statements need no lock:
leases and upserts are one ``INSERT ... ON CONFLICT`` each. Readers never wait.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, Iterator, Sequence

import psycopg
from psycopg_pool import ConnectionPool

from stowage.catalog.pg_schema import apply_migrations
from stowage.catalog.pg_sql import to_pg_placeholders
from stowage.catalog.sql import SqlCatalog
from stowage.errors import BadRequest

#: pg_advisory_xact_lock key every catalog transaction takes ("stowaget" in ASCII).
WRITER_LOCK = 0x73746F7761676574


class FetchedRows:
    """A statement's rows, read before its connection goes back to the pool."""

    __slots__ = ("rows", "rowcount", "_next")

    def __init__(self, cursor: psycopg.Cursor):
        self.rowcount = cursor.rowcount
        self.rows = cursor.fetchall() if cursor.description is not None else []
        self._next = 0

    def fetchone(self) -> Any:
        if self._next >= len(self.rows):
            return None
        self._next += 1
        return self.rows[self._next - 1]

    def fetchall(self) -> list[Any]:
        rows, self._next = self.rows[self._next:], len(self.rows)
        return rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class PostgresCatalog(SqlCatalog):
    def __init__(self, url: str, *, pool_size: int = 20, timeout: float = 60.0):
        """
        :param url: a libpq connection string, ``postgresql://user:password@host:port/database``.
        :param pool_size: connections kept at most (each request thread and background worker uses one
            at a time).
        :param timeout: seconds to wait for the database at start-up and for a free pooled connection.
        """
        self.url = url
        self._local = threading.local()
        self._pool = ConnectionPool(url, min_size=1, max_size=pool_size, timeout=timeout, open=False,
                                    kwargs={"autocommit": True}, name="stowage-catalog")
        self._pool.open(wait=True, timeout=timeout)
        with self._pool.connection() as conn:
            apply_migrations(conn)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        if getattr(self._local, "conn", None) is not None:
            yield  # nested: joins the outer transaction
            return
        with self._pool.connection() as conn:
            self._local.conn = conn
            self._local.pending = []
            try:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITER_LOCK,))
                    yield
            finally:
                self._local.conn = None
                pending, self._local.pending = self._local.pending, []
        for callback in pending:  # committed (an exception skipped this); outside it: a callback may open its own
            callback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        if getattr(self._local, "conn", None) is not None:
            self._local.pending.append(callback)
        else:
            callback()

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> FetchedRows:
        try:
            conn = getattr(self._local, "conn", None)
            if conn is not None:
                return FetchedRows(conn.execute(to_pg_placeholders(sql), params))
            with self._pool.connection() as conn:
                return FetchedRows(conn.execute(to_pg_placeholders(sql), params))
        except psycopg.DataError as error:
            # Refused by psycopg before anything is sent (the transaction goes on): a name, path or key
            # with a NUL character comes from a client, and is a 400 there, never a 500.
            if "NUL" not in str(error):
                raise
            raise BadRequest("text with a NUL character cannot be stored or looked up") from None

    def close(self) -> None:
        self._pool.close()
