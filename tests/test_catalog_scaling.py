"""The catalog's hot queries stay O(log n): checked by query plans and by counting SQLite's work, never
by timing (so the checks cannot be flaky).

An upload's cost must not grow with the repository. These tests fail if a hot query loses its index (a
plan that scans a table) or if an upload starts doing work proportional to the repository's size.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from stowage.catalog.sqlite import SqliteCatalog
from stowage.models import Asset, AssetKind, BlobInfo, Component

# (description, SQL, parameters) for every query an upload, a download or a paged listing runs.
HOT_QUERIES = [
    ("get_asset", "SELECT * FROM assets WHERE repository = ? AND path = ?", ("r", "p")),
    ("put_asset upsert", "SELECT * FROM assets WHERE repository = ? AND path = ?", ("r", "p")),
    ("blob upsert", "SELECT * FROM blobs WHERE sha256 = ?", ("0" * 64,)),
    ("ensure_component", "SELECT * FROM components WHERE repository = ? AND grp = ? AND name = ? AND version = ?",
     ("r", "", "n", "1")),
    ("revision", "SELECT revision FROM repositories WHERE name = ?", ("r",)),
    ("list_assets prefix page", "SELECT * FROM assets WHERE repository = ? AND path >= ? AND path < ? AND path > ? "
     "ORDER BY path LIMIT 1001", ("r", "packages/x/", "packages/x/\U0010ffff", "packages/x/a")),
    ("list_components page", "SELECT * FROM components WHERE repository = ? AND id > ? ORDER BY id LIMIT 101",
     ("r", 0)),
    ("drop_empty_component", "SELECT 1 FROM components WHERE id = ? AND NOT EXISTS "
     "(SELECT 1 FROM assets WHERE component_id = ?)", (1, 1)),
    ("document", "SELECT value FROM documents WHERE namespace = ? AND key = ?", ("n", "k")),
    ("lease", "SELECT owner FROM leases WHERE key = ? AND expires >= ?", ("k", 0)),
]


@pytest.fixture
def catalog(tmp_path: Path) -> SqliteCatalog:
    catalog = SqliteCatalog(tmp_path / "catalog.sqlite")
    catalog.save_repository("r", "pypi", "hosted", {"name": "r"})
    yield catalog
    catalog.close()


@pytest.mark.parametrize("name, sql, params", HOT_QUERIES, ids=[q[0] for q in HOT_QUERIES])
def test_hot_queries_use_an_index_and_never_sort(catalog: SqliteCatalog, name: str, sql: str, params: tuple) -> None:
    plan = [row[3] for row in catalog._conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
    assert plan, name
    for step in plan:
        assert not step.startswith("SCAN"), f"{name}: {plan}"
        assert "TEMP B-TREE" not in step, f"{name}: {plan}"


def _upload(catalog: SqliteCatalog, i: int) -> None:
    """What one pypi upload does to the catalog: a component, a file and its .metadata, one transaction."""
    with catalog.transaction():
        component = catalog.ensure_component(Component(repository="r", format="pypi", name=f"proj{i:05d}",
                                                        version="1.0"))
        for path, sha in ((f"packages/proj{i:05d}/1.0/proj{i:05d}-1.0-py3-none-any.whl", f"{i:064x}"),
                          (f"packages/proj{i:05d}/1.0/proj{i:05d}-1.0-py3-none-any.whl.metadata", f"{i + 10**6:064x}")):
            assert catalog.get_asset("r", path) is None  # the write policy's check
            catalog.put_asset(Asset(repository="r", path=path, blob_sha256=sha, size=1,
                                    content_type="application/zip", kind=AssetKind.CONTENT,
                                    component_id=component.id),
                              BlobInfo(sha256=sha, size=1), "default", overwrite=False)


def _work_of_one_upload(catalog: SqliteCatalog, i: int) -> tuple[int, int]:
    """(SQL statements, SQLite virtual-machine instructions) that one upload costs."""
    conn: sqlite3.Connection = catalog._conn
    statements: list[str] = []
    steps = [0]

    def step() -> int:
        steps[0] += 1
        return 0

    conn.set_trace_callback(statements.append)
    conn.set_progress_handler(step, 1)
    try:
        _upload(catalog, i)
    finally:
        conn.set_progress_handler(None, 1)
        conn.set_trace_callback(None)
    return len(statements), steps[0]


def test_upload_work_does_not_grow_with_the_repository(catalog: SqliteCatalog) -> None:
    empty = _work_of_one_upload(catalog, 0)
    with catalog.transaction():  # 3,000 projects, quickly: the same rows an upload writes
        for i in range(1, 3001):
            _upload(catalog, i)
    full = _work_of_one_upload(catalog, 3001)
    assert full[0] == empty[0], (empty, full)
    # Deeper B-trees may add a few instructions per lookup; a scan or a sort would add thousands.
    assert full[1] <= empty[1] * 1.1, (empty, full)


def test_listing_pages_cost_the_page_not_the_repository(catalog: SqliteCatalog) -> None:
    with catalog.transaction():
        for i in range(2000):
            _upload(catalog, i)
    conn: sqlite3.Connection = catalog._conn
    steps = [0]

    def step() -> int:
        steps[0] += 1
        return 0

    def cost(call) -> int:
        steps[0] = 0
        conn.set_progress_handler(step, 1)
        try:
            call()
        finally:
            conn.set_progress_handler(None, 1)
        return steps[0]

    first = catalog.list_components("r", limit=10)
    token = catalog.list_components("r", limit=1500).continuation_token
    assert len(first.items) == len(catalog.list_components("r", limit=10, continuation_token=token).items) == 10
    small = cost(lambda: catalog.list_components("r", limit=10))
    late = cost(lambda: catalog.list_components("r", limit=10, continuation_token=token))
    assert late <= small * 1.1, (small, late)
    assert small < 500, small  # ~10 rows' worth, not 2,000 rows searched and sorted
