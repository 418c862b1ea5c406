"""Every Catalog method, the same expectations on SQLite and on PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import pytest
from attrs import evolve

from stowage.catalog import Catalog, RemoteStatus, SqliteCatalog
from stowage.errors import BadRequest, Conflict
from stowage.models import Asset, AssetKind, BlobInfo, Component

SHA_A, SHA_B = "a" * 64, "b" * 64


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    if request.param == "sqlite":
        catalog: Catalog = SqliteCatalog(tmp_path / "catalog.sqlite")
    else:
        from stowage.catalog.postgres import PostgresCatalog

        catalog = PostgresCatalog(request.getfixturevalue("postgres_catalog_url"), pool_size=4)
    catalog.save_repository("r", "raw", "hosted", {"name": "r", "format": "raw"})
    yield catalog
    catalog.close()


def put(catalog: Catalog, path: str, sha: str = SHA_A, *, overwrite: bool = True, repository: str = "r",
        **fields) -> Asset:
    return catalog.put_asset(Asset(repository=repository, path=path, blob_sha256=sha, size=3, **fields),
                             BlobInfo(sha256=sha, size=3), "default", overwrite=overwrite)


def test_repositories(catalog: Catalog) -> None:
    catalog.save_repository("b", "pypi", "proxy", {"name": "b", "x": [1, "é"]})
    assert catalog.get_repository("b") == {"name": "b", "x": [1, "é"]}
    assert [r["name"] for r in catalog.list_repositories()] == ["b", "r"]
    first = catalog.revision("b")
    catalog.save_repository("b", "pypi", "proxy", {"name": "b"})  # a config change moves the revision too
    assert catalog.revision("b") == first + 1
    assert catalog.bump_revision("b") == first + 2
    assert catalog.revision("missing") == 0 and catalog.bump_revision("missing") == 0
    put(catalog, "f", repository="b")
    catalog.remember_missing("b", "gone", time.time() + 60)
    catalog.delete_repository("b")
    assert catalog.get_repository("b") is None and catalog.get_asset("b", "f") is None
    assert not catalog.known_missing("b", "gone", time.time())


def test_assets_write_policy_and_revisions(catalog: Catalog) -> None:
    before = catalog.revision("r")
    stored = put(catalog, "dir/a.txt", overwrite=False, attributes={"k": "v"})
    assert stored.id and stored.attributes == {"k": "v"} and catalog.revision("r") == before + 1
    assert catalog.get_asset("r", "dir/a.txt") == stored == catalog.get_asset_by_id(stored.id)
    with pytest.raises(Conflict):
        put(catalog, "dir/a.txt", SHA_B, overwrite=False)
    assert catalog.get_asset("r", "dir/a.txt").blob_sha256 == SHA_A  # the refused write changed nothing
    replaced = put(catalog, "dir/a.txt", SHA_B)
    assert replaced.id == stored.id and replaced.blob_sha256 == SHA_B and replaced.created == stored.created
    updated = catalog.update_asset(evolve(replaced, upstream_etag='"e"', invalidated=True))
    assert updated.upstream_etag == '"e"' and updated.invalidated
    with pytest.raises(Conflict):
        catalog.update_asset(Asset(repository="r", path="never", blob_sha256=SHA_A, size=1))
    assert catalog.delete_asset("r", "dir/a.txt").blob_sha256 == SHA_B
    assert catalog.delete_asset("r", "dir/a.txt") is None and catalog.get_asset_by_id(stored.id) is None


def test_downloads_and_invalidation(catalog: Catalog) -> None:
    a = put(catalog, "a")
    m = put(catalog, "m", kind=AssetKind.METADATA)
    revision = catalog.revision("r")
    assert catalog.record_downloads([(a.id, 100.0), (999999, 100.0)], older_than=50.0) == 1
    assert catalog.record_downloads([(a.id, 120.0)], older_than=50.0) == 0  # recorded recently enough
    assert catalog.get_asset("r", "a").last_downloaded == 100.0 and catalog.revision("r") == revision
    assert catalog.invalidate_assets("r") == 1 and catalog.get_asset("r", "m").invalidated
    assert catalog.invalidate_assets("r", None) == 2
    assert put(catalog, "m", kind=AssetKind.METADATA).invalidated is False and m.id


def test_paths_order_by_code_point_and_page(catalog: Catalog) -> None:
    # Whatever the database's locale: "B" < "a" < "b%" < "b_" < "é", and % and _ are no wildcards.
    paths = ["é", "a", "B", "b_", "b%", "b/c", "b/d/e", "bz"]
    for path in paths:
        put(catalog, path)
    assert [a.path for a in catalog.iter_assets("r")] == sorted(paths)
    assert [a.path for a in catalog.list_assets("r", prefix="b%").items] == ["b%"]
    assert [a.path for a in catalog.list_assets("r", prefix="b/").items] == ["b/c", "b/d/e"]
    first = catalog.list_assets("r", limit=3)
    rest = catalog.list_assets("r", limit=10, continuation_token=first.continuation_token)
    assert [a.path for a in first.items + list(rest.items)] == sorted(paths) and rest.continuation_token is None
    with pytest.raises(BadRequest):
        catalog.list_assets("r", continuation_token="!!")
    seen, token = [], None
    while True:
        page = catalog.list_directory("r", "", continuation_token=token, limit=2)
        seen += [(e.name, e.is_directory) for e in page.items]
        if page.continuation_token is None:
            break
        token = page.continuation_token
    assert seen == [("B", False), ("a", False), ("b%", False), ("b", True), ("b_", False), ("bz", False),
                    ("é", False)]
    assert [(e.name, e.is_directory) for e in catalog.list_directory("r", "b/").items] == [("c", False),
                                                                                          ("d", True)]


def test_components(catalog: Catalog) -> None:
    made = catalog.ensure_component(Component(repository="r", format="raw", group="g", name="n", version="1"))
    again = catalog.ensure_component(Component(repository="r", format="raw", group="g", name="n", version="1"))
    assert made.id == again.id and catalog.get_component(made.id) == made
    other = catalog.ensure_component(Component(repository="r", format="raw", name="n", version="2"))
    revision = catalog.revision("r")
    assert catalog.update_component(evolve(made, attributes={"a": 1})).attributes == {"a": 1}
    assert catalog.revision("r") == revision + 1
    assert [c.id for c in catalog.find_components("r", name="n")] == [made.id, other.id]
    assert [c.id for c in catalog.find_components("r", name="n", group="g")] == [made.id]
    page = catalog.list_components("r", limit=1)
    assert [c.id for c in page.items] == [made.id]
    assert [c.id for c in catalog.list_components("r", continuation_token=page.continuation_token).items] == [other.id]
    put(catalog, "n/1/a", component_id=made.id)
    put(catalog, "n/1/b", SHA_B, component_id=made.id)
    assert [a.path for a in catalog.list_assets("r", component_id=made.id).items] == ["n/1/a", "n/1/b"]
    assert sorted(a.path for a in catalog.delete_component(made.id)) == ["n/1/a", "n/1/b"]
    assert catalog.get_component(made.id) is None and catalog.get_asset("r", "n/1/a") is None
    put(catalog, "n/2/a", component_id=other.id)
    catalog.delete_asset("r", "n/2/a")  # the last asset of a component takes the component with it
    assert catalog.get_component(other.id) is None
    with pytest.raises(Conflict):
        catalog.update_component(other)


def test_search(catalog: Catalog) -> None:
    catalog.save_repository("s", "raw", "hosted", {"name": "s"})
    ids = {}
    for repository, group, name, sha in (("r", "g1", "zeta", SHA_A), ("s", "g2", "alpha", SHA_B),
                                         ("r", "", "al%ph_a", SHA_B)):
        component = catalog.ensure_component(Component(repository=repository, format="raw", group=group,
                                                        name=name, version="1"))
        ids[name] = component.id
        put(catalog, f"{name}/file", sha, repository=repository, component_id=component.id)
    put(catalog, "loose.txt")
    assert [a.path for a in catalog.search_assets(keyword="ph_").items] == ["al%ph_a/file"]
    assert [a.path for a in catalog.search_assets(keyword="loose").items] == ["loose.txt"]
    assert [c.name for c in catalog.search_components(sha256=SHA_B.upper(), sort="name").items] == ["al%ph_a", "alpha"]
    assert [c.name for c in catalog.search_components(repositories=["r"], sort="name", direction="desc").items] == [
        "zeta", "al%ph_a"]
    names, token = [], None
    while True:
        page = catalog.search_components(sort="group", limit=1, continuation_token=token)
        names += [c.name for c in page.items]
        if not (token := page.continuation_token):
            break
    assert names == ["al%ph_a", "zeta", "alpha"]
    assert [a.path for a in catalog.search_assets(name="alpha", group="g2", version="1").items] == ["alpha/file"]
    with pytest.raises(BadRequest):
        catalog.search_assets(sort="path")
    with pytest.raises(BadRequest):
        catalog.search_components(sort="name", continuation_token="e30")


def test_proxy_state(catalog: Catalog) -> None:
    now = time.time()
    catalog.remember_missing("r", "x", now + 60)
    catalog.remember_missing("r", "y", now - 1)
    assert catalog.known_missing("r", "x", now) and not catalog.known_missing("r", "y", now)
    catalog.forget_missing("r", "x")
    assert not catalog.known_missing("r", "x", now)
    catalog.remember_missing("r", "x", now + 60)
    catalog.forget_missing("r")
    assert not catalog.known_missing("r", "x", now)
    assert catalog.remote_status("r") == RemoteStatus()
    catalog.save_remote_status("r", RemoteStatus(3, now + 5, "boom"))
    catalog.save_remote_status("r", RemoteStatus(4, now + 6, "bang"))
    assert catalog.remote_status("r") == RemoteStatus(4, now + 6, "bang")


def test_leases(catalog: Catalog) -> None:
    assert catalog.acquire_lease("k", "a", 60) and not catalog.acquire_lease("k", "b", 60)
    assert catalog.acquire_lease("k", "a", 60) and catalog.lease_holder("k") == "a"  # renewal
    catalog.release_lease("k", "b")  # not b's to release
    assert catalog.lease_holder("k") == "a"
    catalog.release_lease("k", "a")
    assert catalog.lease_holder("k") is None
    assert catalog.acquire_lease("short", "a", -1) and catalog.lease_holder("short") is None
    assert catalog.acquire_lease("short", "b", 60)  # an expired lease is anyone's


def test_documents(catalog: Catalog) -> None:
    catalog.put_document("ns", "a/1", {"v": 1})
    catalog.put_document("ns", "a/2", ["é", None])
    catalog.put_document("ns", "b", 3)
    catalog.put_document("ns", "a/1", {"v": 2})
    assert catalog.get_document("ns", "a/1") == {"v": 2} and catalog.get_document("other", "a/1") is None
    assert catalog.list_documents("ns", prefix="a/") == [("a/1", {"v": 2}), ("a/2", ["é", None])]
    assert catalog.delete_document("ns", "b") and not catalog.delete_document("ns", "b")
    assert [key for key, _ in catalog.list_documents("ns")] == ["a/1", "a/2"]


def test_audit(catalog: Catalog) -> None:
    for i, (user, action) in enumerate((("alice", "repository.created"), ("bob", "repository.deleted"),
                                         ("alice", "security.user.created"))):
        catalog.append_audit({"timestamp": 100.0 + i, "user": user, "domain": "d", "action": action,
                              "target": f"t{i}", "repository": "r" if i < 2 else None, "result": "success",
                              "attributes": {"i": i}})
    events = catalog.list_audit()
    assert [e["target"] for e in events] == ["t2", "t1", "t0"] and events[0]["attributes"] == {"i": 2}
    assert [e["target"] for e in catalog.list_audit(user="alice")] == ["t2", "t0"]
    assert [e["target"] for e in catalog.list_audit(action="repository.*")] == ["t1", "t0"]
    assert [e["target"] for e in catalog.list_audit(repository="r", since=101.0)] == ["t1"]
    assert [e["target"] for e in catalog.list_audit(before_id=events[0]["id"], limit=1)] == ["t1"]
    assert catalog.prune_audit(102.0) == 2 and [e["target"] for e in catalog.list_audit()] == ["t2"]


def test_blobs(catalog: Catalog) -> None:
    put(catalog, "a")
    put(catalog, "b", SHA_B)
    assert catalog.blob_recorded(SHA_A) and catalog.blob_referenced(SHA_A)
    assert catalog.blob_store_usage("default") == (2, 6) and catalog.blob_store_usage("other") == (0, 0)
    created = catalog.blob_created(SHA_B)
    assert created is not None and catalog.blob_created("c" * 64) is None
    assert catalog.unreferenced_blobs(time.time() + 1) == []
    catalog.forget_blob(SHA_B)  # still referenced: kept
    assert catalog.blob_recorded(SHA_B)
    catalog.delete_asset("r", "b")
    assert not catalog.blob_referenced(SHA_B) and catalog.blob_created(SHA_B) >= created
    assert catalog.unreferenced_blobs(time.time() - 60) == []  # inside the grace period
    assert catalog.unreferenced_blobs(time.time() + 1) == [(SHA_B, "default")]
    catalog.forget_blob(SHA_B)
    assert not catalog.blob_recorded(SHA_B)


def test_transactions_commit_roll_back_and_nest(catalog: Catalog) -> None:
    with catalog.transaction():
        catalog.put_document("t", "outer", 1)
        with catalog.transaction():  # joins the outer one
            catalog.put_document("t", "inner", 1)
    assert catalog.get_document("t", "inner") == 1
    with pytest.raises(RuntimeError):
        with catalog.transaction():
            catalog.put_document("t", "lost", 1)
            with catalog.transaction():
                put(catalog, "lost-asset")
            raise RuntimeError("abort")
    assert catalog.get_document("t", "lost") is None and catalog.get_asset("r", "lost-asset") is None
    with pytest.raises(Conflict):
        with catalog.transaction():
            catalog.put_document("t", "also-lost", 1)
            put(catalog, "lost-too")
            put(catalog, "lost-too", overwrite=False)
    assert catalog.get_document("t", "also-lost") is None and catalog.get_asset("r", "lost-too") is None


def test_blob_pins(catalog: Catalog) -> None:
    assert catalog.oldest_blob_pin() is None
    started = catalog.pin_blobs("backup-1", "backup", 60)
    assert catalog.pin_blobs("backup-1", "backup", 120) == started  # renewal keeps the start
    catalog.pin_blobs("expired", "verify", -1)
    assert catalog.oldest_blob_pin() == started
    put(catalog, "a")
    assert list(catalog.recorded_blobs()) == [SHA_A]
    catalog.unpin_blobs("backup-1")
    assert catalog.oldest_blob_pin() is None


def test_nul_characters_are_a_bad_request_on_postgresql(catalog: Catalog) -> None:
    if isinstance(catalog, SqliteCatalog):
        assert catalog.get_document("ns", "a\x00b") is None  # SQLite text holds NUL: simply not found
        return
    with catalog.transaction():
        with pytest.raises(BadRequest):
            catalog.get_asset("r", "evil\x00path")
        catalog.put_document("ns", "after", 1)  # the transaction goes on: nothing was sent
    assert catalog.get_document("ns", "after") == 1


def test_after_commit_waits_for_the_outermost_commit_and_is_dropped_on_rollback(catalog: Catalog) -> None:
    seen: list[str] = []
    catalog.after_commit(lambda: seen.append("no transaction: at once"))
    assert seen == ["no transaction: at once"]
    with catalog.transaction():
        with catalog.transaction():
            put(catalog, "committed")
            catalog.after_commit(lambda: seen.append(f"visible: {catalog.get_asset('r', 'committed') is not None}"))
        assert len(seen) == 1  # the nested transaction's end is not a commit
    assert seen[-1] == "visible: True"
    with pytest.raises(RuntimeError):
        with catalog.transaction():
            put(catalog, "rolled-back")
            catalog.after_commit(lambda: seen.append("rolled back"))
            raise RuntimeError("undo")
    assert "rolled back" not in seen and catalog.get_asset("r", "rolled-back") is None
