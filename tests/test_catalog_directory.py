"""Catalog.list_directory: one directory's children, paged, without reading sub-directories' contents."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stowage.catalog.base import Catalog
from stowage.catalog.sqlite import SqliteCatalog
from stowage.models import Asset, BlobInfo

SEGMENT = st.text(alphabet=string.ascii_letters[:3] + "-./0" + "é", min_size=1, max_size=3).filter(
    lambda s: s not in (".", "..") and "/" not in s)
PATHS = st.lists(st.lists(SEGMENT, min_size=1, max_size=4).map("/".join), min_size=0, max_size=40, unique=True)


def fill(catalog: SqliteCatalog, repository: str, paths: list[str]) -> None:
    catalog.save_repository(repository, "raw", "hosted", {"name": repository})
    blob = BlobInfo(sha256="0" * 64, size=1)
    with catalog.transaction():
        for path in paths:
            catalog.put_asset(Asset(repository=repository, path=path, blob_sha256=blob.sha256, size=1), blob,
                              "default",
                              overwrite=True)


def expected_children(paths: list[str], prefix: str) -> list[tuple[str, bool]]:
    """(name, is_directory) in path order, a directory where its first path sorts."""
    children: dict[str, tuple[str, bool]] = {}
    for path in sorted(p for p in paths if p.startswith(prefix)):
        child, slash, _ = path[len(prefix):].partition("/")
        key = child + "/" if slash else child
        children.setdefault(key, (child, bool(slash)))
    return list(children.values())


def walk(list_directory, repository: str, prefix: str, limit: int) -> list[tuple[str, bool]]:
    seen, token = [], None
    while True:
        page = list_directory(repository, prefix, continuation_token=token, limit=limit)
        assert len(page.items) <= limit
        seen += [(e.name, e.is_directory) for e in page.items]
        if page.continuation_token is None:
            return seen
        assert page.items, "a token must not follow an empty page"
        token = page.continuation_token


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(paths=PATHS, limit=st.integers(1, 5), pick=st.integers(0, 100))
def test_list_directory_pages_match_a_model(tmp_path_factory, paths, limit, pick):
    catalog = SqliteCatalog(tmp_path_factory.mktemp("catalog") / "catalog.db")
    try:
        fill(catalog, "r", paths)
        directories = sorted({p.rsplit("/", i)[0] + "/" for p in paths for i in range(1, p.count("/") + 1)})
        prefixes = [""] + directories
        prefix = prefixes[pick % len(prefixes)]
        want = expected_children(paths, prefix)
        assert walk(catalog.list_directory, "r", prefix, limit) == want
        # The generic implementation (a catalog without the skip-scan) agrees, tokens included.
        assert walk(lambda *a, **k: Catalog.list_directory(catalog, *a, **k), "r", prefix, limit) == want
    finally:
        catalog.close()


def test_a_sub_directory_costs_one_seek_not_a_scan(tmp_path):
    catalog = SqliteCatalog(tmp_path / "catalog.db")
    fill(catalog, "r", ["a.txt"] + [f"huge/{i:05d}" for i in range(3000)] + ["z.txt"])
    statements: list[str] = []
    catalog._conn.set_trace_callback(statements.append)
    page = catalog.list_directory("r", "", limit=100)
    catalog._conn.set_trace_callback(None)
    assert [(e.name, e.is_directory) for e in page.items] == [("a.txt", False), ("huge", True), ("z.txt", False)]
    assert page.continuation_token is None
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) <= 3
