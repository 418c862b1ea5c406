"""The catalog's guarantees hold between processes (nodes), on SQLite and on PostgreSQL: ALLOW_ONCE under
concurrent uploads of one path, one lease holder, no lost update in a read-modify-write transaction."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from stowage.errors import Conflict
from stowage.models import Asset, BlobInfo

pytestmark = pytest.mark.slow

PROCESSES = 6


def open_catalog(where: str):
    if where.startswith("postgresql://"):
        from stowage.catalog.postgres import PostgresCatalog

        return PostgresCatalog(where, pool_size=2)
    from stowage.catalog import SqliteCatalog

    return SqliteCatalog(where)


@pytest.fixture(params=["sqlite", "postgresql"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    where = (request.getfixturevalue("postgres_catalog_url") if request.param == "postgresql"
             else str(tmp_path / "catalog.sqlite"))
    catalog = open_catalog(where)
    catalog.save_repository("r", "raw", "hosted", {"name": "r"})
    catalog.close()
    return where


def upload_once(where: str, barrier, index: int) -> str:
    catalog = open_catalog(where)
    sha = f"{index:064x}"
    barrier.wait()
    try:
        catalog.put_asset(Asset(repository="r", path="same/path", blob_sha256=sha, size=1), BlobInfo(sha, 1),
                          "default", overwrite=False)
        return sha
    except Conflict:
        return "conflict"
    finally:
        catalog.close()


def take_lease(where: str, barrier, index: int) -> bool:
    catalog = open_catalog(where)
    barrier.wait()
    try:
        return catalog.acquire_lease("the-job", f"node-{index}", 60)
    finally:
        catalog.close()


def count_up(where: str, barrier, index: int) -> int:
    catalog = open_catalog(where)
    barrier.wait()
    for _ in range(20):
        with catalog.transaction():
            value = catalog.get_document("t", "counter") or 0
            catalog.put_document("t", "counter", value + 1)
    catalog.close()
    return index


def run_together(function, where: str) -> list:
    context = multiprocessing.get_context("fork")
    with context.Manager() as manager:
        barrier = manager.Barrier(PROCESSES)
        with context.Pool(PROCESSES) as pool:
            return pool.starmap(function, [(where, barrier, i) for i in range(PROCESSES)])


def test_allow_once_has_exactly_one_winner(where: str) -> None:
    results = run_together(upload_once, where)
    winners = [r for r in results if r != "conflict"]
    assert len(winners) == 1, results
    catalog = open_catalog(where)
    assert catalog.get_asset("r", "same/path").blob_sha256 == winners[0]
    catalog.close()


def test_one_lease_holder(where: str) -> None:
    assert sorted(run_together(take_lease, where)) == [False] * (PROCESSES - 1) + [True]


def test_read_modify_write_transactions_lose_no_update(where: str) -> None:
    run_together(count_up, where)
    catalog = open_catalog(where)
    assert catalog.get_document("t", "counter") == PROCESSES * 20
    catalog.close()
