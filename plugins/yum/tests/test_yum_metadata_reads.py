"""What a hot ``repomd.xml`` GET costs the catalog: no more than any other file's GET (issue 16, metadata
GETs against peers; counted in SQL statements, which is exact, never timed)."""

from __future__ import annotations

import gzip
import re
import time

import pytest


def _statements(ts, path: str) -> int:
    """SQL statements one GET of ``path`` runs on this thread's catalog connection (after a warm-up GET)."""
    if not hasattr(ts.stowage.catalog, "_conn"):
        pytest.skip("counts the SQLite catalog's statements (STOWAGE_TEST_CATALOG=postgresql)")
    url = f"/repository/yum-hosted/{path}"
    assert ts.client.simulate_get(url).status_code == 200  # warm: permission and setting caches filled
    statements: list[str] = []
    conn = ts.stowage.catalog._conn
    conn.set_trace_callback(statements.append)
    try:
        assert ts.client.simulate_get(url).status_code == 200
    finally:
        conn.set_trace_callback(None)
    return len(statements)


def _wait_listed(ts, count: int) -> None:
    """Until the served primary.xml lists ``count`` packages (the coalesced regeneration has run)."""
    deadline = time.monotonic() + 30
    while True:
        repomd = ts.client.simulate_get("/repository/yum-hosted/repodata/repomd.xml").text
        href = re.search(r'href="(repodata/[^"]+-primary.xml.gz)"', repomd).group(1)
        primary = gzip.decompress(ts.client.simulate_get(f"/repository/yum-hosted/{href}").content)
        if primary.count(b"<package ") == count:
            return
        assert time.monotonic() < deadline, "the repodata never listed the upload"
        time.sleep(0.1)


def test_hot_repomd_costs_what_a_package_costs(yum_app, rpms, monkeypatch):
    ts = yum_app()
    # the one-second caches (permission decisions, settings) must not expire between the counted GETs
    monkeypatch.setattr(ts.stowage.security, "DECISION_TTL", 3600)
    monkeypatch.setattr(ts.stowage, "CONFIG_RECHECK_SECONDS", 3600)
    assert ts.client.simulate_put("/repository/yum-hosted/hello-1.0-1.noarch.rpm", headers=ts.admin,
                                  body=rpms["hello-1.0"].read_bytes()).status_code == 201
    _wait_listed(ts, 1)
    package = _statements(ts, "hello-1.0-1.noarch.rpm")
    repomd = _statements(ts, "repodata/repomd.xml")
    # before: the regenerator's "has this root ever been generated?" lookup, then the same asset again
    assert repomd <= package, (repomd, package)


def test_a_root_never_generated_still_gets_repodata_at_its_first_read(yum_app):
    ts = yum_app()
    response = ts.client.simulate_get("/repository/yum-hosted2/repodata/repomd.xml")
    assert response.status_code == 200 and b"<repomd" in response.content
    # and a directory that is not a repodata root at this depth is still a 404, not generated
    assert ts.client.simulate_get("/repository/yum-hosted2/a/repodata/repomd.xml").status_code == 404
