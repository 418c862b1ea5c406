"""The PostgreSQL migrations twin the SQLite ones: same names, same tables, columns and indexes; each is
applied once, however many nodes start at the same moment."""

from __future__ import annotations

import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

from stowage.catalog import SqliteCatalog
from stowage.catalog.pg_schema import MIGRATIONS
from stowage.catalog.postgres import PostgresCatalog
from stowage.catalog.schema import migrations as sqlite_migrations

PG_TYPES = {"TEXT": "text", "INTEGER": "bigint", "REAL": "double precision"}
BOOKKEEPING = {"_sqlite_migrations", "stowage_migrations"}


def test_every_sqlite_migration_has_a_postgresql_twin_in_the_same_order() -> None:
    assert [m.name for m in sqlite_migrations._migrations] == [name for name, _ in MIGRATIONS]


def sqlite_schema(path: Path) -> tuple[dict, set]:
    conn = sqlite3.connect(path)
    tables = {}
    for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"):
        if table not in BOOKKEEPING:
            tables[table] = {(name, PG_TYPES[type_], bool(notnull or pk))
                             for _, name, type_, notnull, _, pk in conn.execute(f"PRAGMA table_info({table})")}
    indexes = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT "
                                                "NULL AND tbl_name <> '_sqlite_migrations'")}
    conn.close()
    return tables, indexes


def postgres_schema(url: str) -> tuple[dict, set]:
    with psycopg.connect(url) as conn:
        tables: dict = {}
        for table, name, type_, nullable in conn.execute(
                "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
                "WHERE table_schema = 'public'"):
            if table not in BOOKKEEPING:
                tables.setdefault(table, set()).add((name, type_, nullable == "NO"))
        indexes = {name for (name,) in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND indexname NOT LIKE '%\\_pkey' "
            "AND indexname NOT LIKE '%\\_key'")}
    return tables, indexes


def test_the_migrated_schemas_have_the_same_tables_columns_and_indexes(tmp_path: Path, postgres_server) -> None:
    SqliteCatalog(tmp_path / "c.sqlite").close()
    url = postgres_server.new_database()
    PostgresCatalog(url, pool_size=1).close()
    sqlite_tables, sqlite_indexes = sqlite_schema(tmp_path / "c.sqlite")
    pg_tables, pg_indexes = postgres_schema(url)
    assert sqlite_tables == pg_tables
    assert sqlite_indexes == pg_indexes


def test_nodes_starting_together_apply_each_migration_once(postgres_server) -> None:
    url = postgres_server.new_database()
    with ThreadPoolExecutor(4) as pool:
        catalogs = list(pool.map(lambda _: PostgresCatalog(url, pool_size=1), range(4)))
    for catalog in catalogs:
        catalog.close()
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT name, COUNT(*) FROM stowage_migrations GROUP BY name ORDER BY name").fetchall()
    assert rows == sorted((name, 1) for name, _ in MIGRATIONS)
    PostgresCatalog(url, pool_size=1).close()  # a restart finds nothing to do
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT COUNT(*) FROM stowage_migrations").fetchone()[0] == len(MIGRATIONS)


def test_a_reused_data_migration_runs_on_postgresql(postgres_catalog_url: str) -> None:
    """m010_token_identity (SQLite statements through SqliteStyleConnection) rewrites legacy documents."""
    legacy_user = '{"user_id": "alice", "password_hash": "x"}'
    legacy_token = '{"user": "alice", "created": 1.0}'
    with psycopg.connect(postgres_catalog_url, autocommit=True) as conn:
        for namespace, key, value in (("security.users", "alice", legacy_user),
                                      ("security.tokens", "t" * 30, legacy_token),
                                      ("security.tokens", "orphan", '{"user": "gone"}'),
                                      ("docker", "token-secret", '"old"')):
            conn.execute("INSERT INTO documents (namespace, key, value, updated) VALUES (%s, %s, %s, 0)",
                         (namespace, key, value))
        with conn.transaction():
            dict(MIGRATIONS)["m010_token_identity"](conn)
        documents = {(ns, key): json.loads(value) for ns, key, value in
                     conn.execute("SELECT namespace, key, value FROM documents")}
    identity = documents[("security.users", "alice")]["identity"]
    assert identity and documents[("security.tokens", "t" * 30)]["identity"] == identity
    assert ("security.tokens", "orphan") not in documents and ("docker", "token-secret") not in documents
