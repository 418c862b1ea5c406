"""Simple pages gzip'd for clients that accept it (pip, uv and browsers all send ``Accept-Encoding: gzip``),
compressed once per page revision, with their own ETag; a root filtered per request is sent as it is."""

from __future__ import annotations

import gzip

import pytest

from pypi_kit import limit_dev_to_cwiq, make_wheel
from stowage.testing.harness import basic_auth
from test_pypi_hosted import upload

#: what pip 24 sends for a simple page
PIP = {"Accept": "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
                 "text/html; q=0.01", "Accept-Encoding": "gzip, deflate"}


@pytest.fixture
def app(stowage_factory):
    test_stowage = stowage_factory()
    test_stowage.create_repository(name="pypi-hosted", format="pypi", type="hosted")
    return test_stowage


@pytest.mark.parametrize("path", ["simple/demo/", "simple/"])
def test_pip_gets_the_page_gzipped_with_its_own_etag(app, dists, path):
    for version in ("1.0", "1.1"):
        assert upload(app, make_wheel(dists, "demo", version)).status_code == 200
    url = f"/repository/pypi-hosted/{path}"
    packed = app.client.simulate_get(url, headers=PIP)
    plain = app.client.simulate_get(url, headers={"Accept": PIP["Accept"]})
    assert packed.status_code == plain.status_code == 200
    assert packed.headers["Content-Encoding"] == "gzip" and "Content-Encoding" not in plain.headers
    assert gzip.decompress(packed.content) == plain.content
    assert packed.headers["Content-Type"] == plain.headers["Content-Type"] == "application/vnd.pypi.simple.v1+json"
    assert "Accept-Encoding" in packed.headers["Vary"] and "Accept-Encoding" in plain.headers["Vary"]
    # a strong validator names one encoding: a cache holding one must not be told it holds the other
    assert packed.headers["ETag"] != plain.headers["ETag"]
    again = app.client.simulate_get(url, headers={**PIP, "If-None-Match": packed.headers["ETag"]})
    assert again.status_code == 304
    stale = app.client.simulate_get(url, headers={**PIP, "If-None-Match": plain.headers["ETag"]})
    assert stale.status_code == 200 and stale.content == packed.content
    html = app.client.simulate_get(url, headers={"Accept": "text/html", "Accept-Encoding": "gzip"})
    assert html.headers["Content-Type"].startswith("text/html")
    assert gzip.decompress(html.content) == app.client.simulate_get(url, headers={"Accept": "text/html"}).content


def test_the_gzipped_page_follows_uploads(app, dists):
    assert upload(app, make_wheel(dists, "demo", "1.0")).status_code == 200
    url = "/repository/pypi-hosted/simple/demo/"
    before = app.client.simulate_get(url, headers=PIP)
    assert b"demo-1.0-" in gzip.decompress(before.content)
    assert upload(app, make_wheel(dists, "demo", "2.0")).status_code == 200
    after = app.client.simulate_get(url, headers={**PIP, "If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and b"demo-2.0-" in gzip.decompress(after.content)


def test_a_root_filtered_by_content_selector_is_sent_plain(app, dists):
    for project in ("cwiq-tool", "other-tool"):
        assert upload(app, make_wheel(dists, project, "1.0")).status_code == 200
    limit_dev_to_cwiq(app.stowage)
    root = app.client.simulate_get("/repository/pypi-hosted/simple/", headers={**PIP, **basic_auth("dev", "dev-pw")})
    assert root.status_code == 200 and "Content-Encoding" not in root.headers
    assert "cwiq-tool" in root.text and "other-tool" not in root.text
    full = app.client.simulate_get("/repository/pypi-hosted/simple/", headers={**PIP, **app.admin})
    assert full.headers["Content-Encoding"] == "gzip" and b"other-tool" in gzip.decompress(full.content)
