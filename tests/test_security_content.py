"""Every response that carries stored or proxied bytes is inert in a browser (issue #10, item 1).

Each format's content route is asked for an asset recorded with a hostile type (``text/html``, as an
uploader or a remote could have declared it): the answer always has ``nosniff`` and a sandboxing
``Content-Security-Policy``, and a type the server chose. The same attacks in a real browser are in
test_security_browser.py.
"""

from __future__ import annotations

import hashlib
import io
import json

import pytest

from stowage.http.content import CONTENT_SECURITY_POLICY

HTML = b"<html><body><script>document.title='pwned'</script></body></html>"
BROWSER_RUNS = ("text/html", "image/svg+xml", "application/xhtml+xml", "text/xml", "application/xml")


def assert_inert(response, expected_type: str | None = None) -> None:
    assert response.headers.get("x-content-type-options") == "nosniff", response.headers
    policy = response.headers.get("content-security-policy", "")
    media_type = response.headers.get("content-type", "").split(";")[0]
    assert policy == CONTENT_SECURITY_POLICY
    assert "sandbox" in policy.split("; ") and "default-src 'none'" in policy
    if expected_type is not None:
        assert media_type == expected_type, response.headers


def record(ts, repository: str, path: str, body: bytes, content_type: str = "text/html", **kwargs):
    repo = ts.stowage.repository(repository)
    blob = repo.blob_store.store(io.BytesIO(body), length=len(body))
    return repo.record(path, blob, content_type=content_type, **kwargs)


@pytest.fixture
def ts(stowage_app):
    for name, fmt, extra in (("raw-inline", "raw", {"raw": {"contentDisposition": "INLINE"}}),
                             ("raw-attach", "raw", {}), ("docker-hosted", "docker", {}),
                             ("pypi-hosted", "pypi", {}), ("npm-hosted", "npm", {}), ("yum-hosted", "yum", {})):
        stowage_app.create_repository(name=name, format=fmt, type="hosted", **extra)
    return stowage_app


def test_raw_types_come_from_the_name_never_from_the_uploader(ts):
    client, admin = ts.client, ts.admin
    uploads = {"page.html": "text/html", "logo.svg": "image/svg+xml", "notes.txt": "text/plain",
               "report.pdf": "application/pdf", "photo.png": "image/png", "blob": "application/octet-stream",
               "data.xml": "application/xml"}
    for name in uploads:
        for repository in ("raw-inline", "raw-attach"):
            put = client.simulate_put(f"/repository/{repository}/d/{name}", body=HTML,
                                      headers={**admin, "Content-Type": "text/html"})
            assert put.status_code == 201, put.text
    for name, expected in uploads.items():
        got = client.simulate_get(f"/repository/raw-inline/d/{name}")
        assert got.status_code == 200 and got.content == HTML
        assert_inert(got, expected)
        disposition = got.headers["content-disposition"].split(";")[0]
        # INLINE shows images (SVG too: the sandbox keeps its scripts dead), text and PDFs; HTML, XML and
        # unknown types are always downloads.
        inline = name in ("logo.svg", "notes.txt", "report.pdf", "photo.png")
        assert disposition == ("inline" if inline else "attachment"), (name, disposition)
        attach = client.simulate_get(f"/repository/raw-attach/d/{name}")
        assert_inert(attach, expected)
        assert attach.headers["content-disposition"].startswith("attachment;")
    # HEAD, a range and a 304 carry the same headers.
    assert_inert(client.simulate_head("/repository/raw-inline/d/page.html"))
    assert_inert(client.simulate_get("/repository/raw-inline/d/page.html", headers={"Range": "bytes=0-3"}))
    etag = client.simulate_get("/repository/raw-inline/d/page.html").headers["etag"]
    not_modified = client.simulate_get("/repository/raw-inline/d/page.html", headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert_inert(not_modified)
    # Errors from the repository routes too (a format may put uploaded names in them).
    assert_inert(client.simulate_get("/repository/raw-inline/d/missing.html"))


def test_docker_manifest_with_an_html_content_type_is_refused(ts):
    client, admin = ts.client, ts.admin
    put = client.simulate_put("/repository/docker-hosted/v2/evil/manifests/latest", body=HTML,
                              headers={**admin, "Content-Type": "text/html"})
    assert put.status_code == 400 and put.json["errors"][0]["code"] == "MANIFEST_INVALID"
    # Valid JSON declared as HTML is refused just the same: the type would be served back.
    document = json.dumps({"schemaVersion": 2, "layers": [], "annotations": {"x": "<script>alert(1)</script>"}})
    put = client.simulate_put("/repository/docker-hosted/v2/evil/manifests/latest", body=document,
                              headers={**admin, "Content-Type": "text/html"})
    assert put.status_code == 400 and put.json["errors"][0]["code"] == "MANIFEST_INVALID"
    assert ts.stowage.catalog.get_asset("docker-hosted", "v2/evil/manifests/latest") is None
    assert client.simulate_get("/repository/docker-hosted/v2/evil/manifests/latest",
                               headers=admin).status_code == 404


@pytest.mark.parametrize("route", ["/repository/docker-hosted/v2/{rest}", "/v2/docker-hosted/{rest}"])
def test_docker_content_is_served_only_as_manifest_types(ts, route):
    client, admin = ts.client, ts.admin
    # A manifest recorded with an HTML type (stored before this fix, or by a hostile proxy remote) is served
    # as a manifest media type, never as HTML.
    record(ts, "docker-hosted", "v2/evil/manifests/old", HTML, attributes={"mediaType": "text/html"})
    got = client.simulate_get(route.format(rest="evil/manifests/old"), headers=admin)
    assert got.status_code == 200 and got.content == HTML
    assert_inert(got, "application/vnd.oci.image.manifest.v1+json")
    digest = "sha256:" + hashlib.sha256(HTML).hexdigest()
    record(ts, "docker-hosted", f"v2/evil/blobs/{digest}", HTML)
    blob = client.simulate_get(route.format(rest=f"evil/blobs/{digest}"), headers=admin)
    assert blob.status_code == 200
    assert_inert(blob, "application/octet-stream")
    tags = client.simulate_get(route.format(rest="evil/tags/list"), headers=admin)
    assert tags.status_code == 200 and tags.json["tags"] == ["old"]
    assert_inert(tags, "application/json")


def test_pypi_npm_and_yum_content_routes(ts):
    client = ts.client
    record(ts, "pypi-hosted", "packages/evil/1.0/evil-1.0.tar.gz", HTML)
    assert_inert(client.simulate_get("/repository/pypi-hosted/packages/evil/1.0/evil-1.0.tar.gz"), "application/gzip")
    # The generated index (HTML listing uploader-chosen names) is sandboxed too.
    assert_inert(client.simulate_get("/repository/pypi-hosted/simple/"), "text/html")
    record(ts, "npm-hosted", "evil/-/evil-1.0.0.tgz", HTML)
    assert_inert(client.simulate_get("/repository/npm-hosted/evil/-/evil-1.0.0.tgz"), "application/octet-stream")
    record(ts, "yum-hosted", "el9/evil-1.0-1.noarch.rpm", HTML)
    assert_inert(client.simulate_get("/repository/yum-hosted/el9/evil-1.0-1.noarch.rpm"), "application/x-rpm")
    # A file the format has no type for keeps its recorded type only when a browser would not run it.
    record(ts, "yum-hosted", "el9/notes.html", HTML)
    assert_inert(client.simulate_get("/repository/yum-hosted/el9/notes.html"), "application/octet-stream")
    record(ts, "yum-hosted", "el9/notes.txt", b"text", content_type="text/plain")
    assert_inert(client.simulate_get("/repository/yum-hosted/el9/notes.txt"), "text/plain")
    for i, media_type in enumerate(BROWSER_RUNS):
        record(ts, "yum-hosted", f"el9/x{i}", HTML, content_type=media_type)
        assert_inert(client.simulate_get(f"/repository/yum-hosted/el9/x{i}"), "application/octet-stream")


def test_proxied_content_streamed_while_it_arrives(ts, fault_upstream, live_server_factory):
    """A proxy miss (streamed as it downloads) gets the same headers; the remote's HTML type is not kept."""
    import urllib3

    fault_upstream.put("/dist/page.html", HTML, content_type="text/html")
    fault_upstream.put("/dist/other", HTML, content_type="text/html")
    ts.create_repository(name="raw-proxy", format="raw", type="proxy",
                         proxy={"remoteUrl": f"{fault_upstream.url}/dist/"})
    live = live_server_factory(ts)
    for path, expected in (("page.html", "text/html"), ("other", "application/octet-stream")):
        first = urllib3.request("GET", f"{live.url}/repository/raw-proxy/{path}")
        assert first.status == 200 and first.data == HTML
        assert_inert(first, expected)
        assert first.headers["content-disposition"].startswith("attachment;")
