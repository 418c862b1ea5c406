"""Hot asset lookups of the SQLite catalog come from memory only while nothing was committed anywhere
(stowage.catalog.sqlite_changes): a write by another process is seen by the very next lookup."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from stowage.catalog import SqliteCatalog
from stowage.catalog.sqlite_changes import WalChangeStamp
from stowage.models import Asset, BlobInfo

SHA_A, SHA_B = "a" * 64, "b" * 64


def put(catalog: SqliteCatalog, path: str, sha: str) -> Asset:
    return catalog.put_asset(Asset(repository="r", path=path, blob_sha256=sha, size=3), BlobInfo(sha256=sha, size=3),
                             "default", overwrite=True)


def in_another_process(path: Path, code: str) -> None:
    """Run ``code`` with ``catalog`` (its own SqliteCatalog on ``path``) in a separate Python process."""
    script = "from stowage.catalog import SqliteCatalog\nfrom stowage.models import Asset, BlobInfo\n" \
             f"catalog = SqliteCatalog({str(path)!r})\n" + textwrap.dedent(code)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)


@pytest.fixture
def catalog(tmp_path: Path) -> SqliteCatalog:
    catalog = SqliteCatalog(tmp_path / "catalog.sqlite")
    catalog.save_repository("r", "raw", "hosted", {"name": "r", "format": "raw"})
    yield catalog
    catalog.close()


def asset_queries(catalog: SqliteCatalog) -> list[str]:
    statements: list[str] = []
    catalog._conn.set_trace_callback(statements.append)
    return statements


def test_a_hot_lookup_runs_no_query(catalog: SqliteCatalog) -> None:
    put(catalog, "a.txt", SHA_A)
    statements = asset_queries(catalog)
    first = catalog.get_asset("r", "a.txt")
    assert [catalog.get_asset("r", "a.txt") for _ in range(3)] == [first] * 3
    assert len([s for s in statements if "FROM assets" in s]) == 1
    # each caller gets its own model: nothing mutable is shared between requests
    assert catalog.get_asset("r", "a.txt") is not first


def test_writes_by_another_process_are_seen_by_the_next_lookup(catalog: SqliteCatalog, tmp_path: Path) -> None:
    put(catalog, "a.txt", SHA_A)
    assert catalog.get_asset("r", "a.txt").blob_sha256 == SHA_A
    assert catalog.get_asset("r", "new.txt") is None  # a miss is remembered too
    in_another_process(tmp_path / "catalog.sqlite", f"""
        for path in ("a.txt", "new.txt"):
            catalog.put_asset(Asset(repository="r", path=path, blob_sha256={SHA_B!r}, size=3),
                              BlobInfo(sha256={SHA_B!r}, size=3), "default", overwrite=True)
    """)
    assert catalog.get_asset("r", "a.txt").blob_sha256 == SHA_B
    assert catalog.get_asset("r", "new.txt").blob_sha256 == SHA_B
    in_another_process(tmp_path / "catalog.sqlite", 'catalog.delete_asset("r", "a.txt")')
    assert catalog.get_asset("r", "a.txt") is None


def test_a_write_on_another_thread_connection_and_inside_a_transaction(catalog: SqliteCatalog,
                                                                         tmp_path: Path) -> None:
    other = SqliteCatalog(tmp_path / "catalog.sqlite")  # another connection, as another worker thread has
    try:
        put(catalog, "a.txt", SHA_A)
        assert catalog.get_asset("r", "a.txt").blob_sha256 == SHA_A
        put(other, "a.txt", SHA_B)
        assert catalog.get_asset("r", "a.txt").blob_sha256 == SHA_B
        with catalog.transaction():  # its own uncommitted write: the header does not show it yet
            put(catalog, "a.txt", SHA_A)
            assert catalog.get_asset("r", "a.txt").blob_sha256 == SHA_A
        assert other.get_asset("r", "a.txt").blob_sha256 == SHA_A
    finally:
        other.close()


def test_without_a_wal_index_every_lookup_queries(tmp_path: Path) -> None:
    assert WalChangeStamp(str(tmp_path / "missing.sqlite")).read() is None
    memory = SqliteCatalog(":memory:")
    memory.save_repository("r", "raw", "hosted", {"name": "r", "format": "raw"})
    put(memory, "a.txt", SHA_A)
    statements = asset_queries(memory)
    memory.get_asset("r", "a.txt")
    memory.get_asset("r", "a.txt")
    assert len([s for s in statements if "FROM assets" in s]) == 2


def test_the_stamp_changes_with_every_commit(catalog: SqliteCatalog) -> None:
    stamp = WalChangeStamp(catalog.path)
    seen = {stamp.read()}
    for n in range(5):
        put(catalog, f"{n}.txt", SHA_A)
        seen.add(stamp.read())
    assert None not in seen and len(seen) == 6
    catalog._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the WAL restarts: later commits still differ
    put(catalog, "after.txt", SHA_B)
    assert stamp.read() not in seen
