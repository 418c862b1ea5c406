"""Issue 2 acceptance: the Nexus-shaped REST API for raw (repositories CRUD, components, assets, browse)."""

from __future__ import annotations

import json

import pytest

from core_helpers import curl

V1 = "/service/rest/v1"


@pytest.fixture
def app(stowage_app):
    return stowage_app


def test_repositories_crud(app):
    client, admin = app.client, app.admin
    body = {"name": "files", "online": True,
            "storage": {"blobStoreName": "default", "strictContentTypeValidation": True, "writePolicy": "ALLOW"},
            "raw": {"contentDisposition": "INLINE"}}
    assert client.simulate_post(f"{V1}/repositories/raw/hosted", json=body).status_code == 401
    created = client.simulate_post(f"{V1}/repositories/raw/hosted", json=body, headers=admin)
    assert created.status_code == 201
    again = client.simulate_post(f"{V1}/repositories/raw/hosted", json=body, headers=admin)
    assert again.status_code == 400 and "already exists" in again.text

    got = client.simulate_get(f"{V1}/repositories/raw/hosted/files", headers=admin).json
    assert got["name"] == "files" and got["format"] == "raw" and got["type"] == "hosted"
    assert got["storage"]["writePolicy"] == "ALLOW" and got["raw"] == {"contentDisposition": "INLINE"}
    assert got["url"] == "http://falconframework.org/repository/files"
    summary = client.simulate_get(f"{V1}/repositories/files").json
    assert summary == {"name": "files", "format": "raw", "type": "hosted", "online": True, "attributes": {},
                       "url": "http://falconframework.org/repository/files"}
    assert [r["name"] for r in client.simulate_get(f"{V1}/repositories").json] == ["files"]

    body["storage"]["writePolicy"] = "DENY"
    assert client.simulate_put(f"{V1}/repositories/raw/hosted/files", json=body, headers=admin).status_code == 204
    assert client.simulate_get(f"{V1}/repositories/raw/hosted/files",
                               headers=admin).json["storage"]["writePolicy"] == "DENY"
    assert client.simulate_put(f"{V1}/repositories/raw/hosted/nope", json={**body, "name": "nope"},
                               headers=admin).status_code == 404
    # type and format are part of the URL and cannot change
    assert client.simulate_get(f"{V1}/repositories/raw/proxy/files", headers=admin).status_code == 404
    assert client.simulate_post(f"{V1}/repositories/nosuchformat/hosted", json=body, headers=admin).status_code == 404

    bad = client.simulate_post(f"{V1}/repositories/raw/hosted", json={"name": "bad", "storage": {"writPolicy": "x"}},
                               headers={**admin, "Accept": "application/json"})
    # Nexus's validation list: one entry per offending field
    assert bad.status_code == 400 and bad.json == [
        {"id": "PARAMETER storage", "message": "extra fields found (writPolicy) @ $.storage"}]
    bad_name = client.simulate_post(f"{V1}/repositories/raw/hosted", json={"name": "../x"}, headers=admin)
    assert bad_name.status_code == 400
    assert client.simulate_post(f"{V1}/repositories/raw/hosted", body="{not json",
                                headers={**admin, "Content-Type": "application/json"}).status_code == 400

    assert client.simulate_delete(f"{V1}/repositories/files").status_code == 401
    assert client.simulate_delete(f"{V1}/repositories/files", headers=admin).status_code == 204
    assert client.simulate_delete(f"{V1}/repositories/files", headers=admin).status_code == 404
    assert client.simulate_get(f"{V1}/repositories/files").status_code == 404


def test_proxy_secrets_are_never_returned(app):
    body = {"name": "up", "online": True, "proxy": {"remoteUrl": "http://127.0.0.1:9/"},
            "httpClient": {"authentication": {"type": "username", "username": "u", "password": "s3cret"}}}
    assert app.client.simulate_post(f"{V1}/repositories/raw/proxy", json=body, headers=app.admin).status_code == 201
    for url in (f"{V1}/repositories/raw/proxy/up", f"{V1}/repositorySettings", f"{V1}/repositories/up",
                f"{V1}/repositories"):
        text = app.client.simulate_get(url, headers=app.admin).text
        assert "s3cret" not in text, url
    # an update without the password keeps the stored one (the body is the GET answer, edited)
    body = app.client.simulate_get(f"{V1}/repositories/raw/proxy/up", headers=app.admin).json
    assert "password" not in body["httpClient"]["authentication"]
    body["online"] = False
    assert app.client.simulate_put(f"{V1}/repositories/raw/proxy/up", json=body, headers=app.admin).status_code == 204
    stored = app.stowage.catalog.get_repository("up")
    kept = stored["httpClient"]["authentication"]["password"]  # sealed in the catalog (docs/security.md)
    assert kept.startswith("sealed:v1:") and app.stowage.unseal(kept) == "s3cret" and stored["online"] is False


def test_components_upload_with_curl_and_paged_listings(app, live_server_factory, tmp_path):
    app.create_repository(name="files", format="raw", type="hosted")
    server = live_server_factory(app)
    one, two = tmp_path / "one.txt", tmp_path / "two.bin"
    one.write_text("first file")
    two.write_bytes(b"\x00\x01" * 1000)
    auth = ("-u", f"admin:{app.admin_password}")
    upload = curl(*auth, "-o", "/dev/stderr", "-w", "%{http_code}",
                  "-F", "raw.directory=/tools/v1/", "-F", f"raw.asset1=@{one}", "-F", "raw.asset1.filename=readme.txt",
                  "-F", f"raw.asset2=@{two}", f"{server.url}{V1}/components?repository=files")
    assert upload.stdout == "204", upload.stderr
    assert curl(f"{server.url}/repository/files/tools/v1/readme.txt").stdout == "first file"
    assert curl("-o", "/dev/null", "-w", "%{http_code}", f"{server.url}/repository/files/tools/v1/two.bin").stdout == "200"
    # same rules as PUT: anonymous is refused, ALLOW_ONCE refuses a second upload, traversal is refused
    assert curl("-o", "/dev/null", "-w", "%{http_code}", "-F", f"raw.asset1=@{one}",
                f"{server.url}{V1}/components?repository=files").stdout == "401"
    again = curl(*auth, "-w", "\n%{http_code}", "-F", "raw.directory=tools/v1", "-F", f"raw.asset1=@{one}",
                 "-F", "raw.asset1.filename=readme.txt", f"{server.url}{V1}/components?repository=files")
    assert again.stdout.endswith("400") and "does not allow updating" in again.stdout
    evil = curl(*auth, "-o", "/dev/null", "-w", "%{http_code}", "-F", "raw.directory=../other",
                "-F", f"raw.asset1=@{one}", f"{server.url}{V1}/components?repository=files")
    assert evil.stdout == "400"
    assert curl(*auth, "-o", "/dev/null", "-w", "%{http_code}", "-F", "raw.directory=x",
                f"{server.url}{V1}/components?repository=files").stdout == "400"

    for i in range(203):
        app.stowage.repository("files").store(f"many/{i:04d}.txt", __import__("io").BytesIO(b"%d" % i))
    paths, token, pages = [], None, 0
    while True:
        query = f"repository=files" + (f"&continuationToken={token}" if token else "")
        page = json.loads(curl(f"{server.url}{V1}/assets?{query}").stdout)
        pages += 1
        paths += [item["path"] for item in page["items"]]
        token = page["continuationToken"]
        if token is None:
            break
    assert pages == 3 and len(paths) == 205 == len(set(paths)) and paths == sorted(paths)
    first = json.loads(curl(f"{server.url}{V1}/assets?repository=files").stdout)["items"][0]
    assert first["path"].startswith("many/") and first["downloadUrl"].startswith(server.url + "/repository/files/")
    assert set(first["checksum"]) >= {"sha256"} and first["repository"] == "files" and first["format"] == "raw"
    asset = json.loads(curl(f"{server.url}{V1}/assets/{first['id']}").stdout)
    assert asset == first
    assert curl(*auth, "-X", "DELETE", "-o", "/dev/null", "-w", "%{http_code}",
                f"{server.url}{V1}/assets/{first['id']}").stdout == "204"
    assert curl("-o", "/dev/null", "-w", "%{http_code}", f"{server.url}{V1}/assets/{first['id']}").stdout == "404"
    bad_token = curl("-o", "/dev/null", "-w", "%{http_code}",
                     f"{server.url}{V1}/assets?repository=files&continuationToken=%25%25").stdout
    assert bad_token == "400"
    components = json.loads(curl(f"{server.url}{V1}/components?repository=files").stdout)
    assert components["continuationToken"] is None
    assert curl("-o", "/dev/null", "-w", "%{http_code}", f"{server.url}{V1}/assets").stdout == "400"
    assert curl("-o", "/dev/null", "-w", "%{http_code}", f"{server.url}{V1}/assets?repository=nope").stdout == "404"


def test_browse_html(app, live_server_factory):
    app.create_repository(name="files", format="raw", type="hosted")
    repository = app.stowage.repository("files")
    import io

    for path in ("a/b/c.txt", "a/d.txt", "top.txt", "a/<script>.txt"):
        repository.store(path, io.BytesIO(path.encode()))
    server = live_server_factory(app)
    browse = "/service/rest/repository/browse/files"
    root = curl(f"{server.url}{browse}/").stdout
    assert f'href="{browse}/a/"' in root and 'href="/repository/files/top.txt"' in root
    below = curl(f"{server.url}{browse}/a/").stdout
    assert f'href="{browse}/a/b/"' in below and 'href="/repository/files/a/d.txt"' in below
    assert f'href="{browse}/">../' in below  # the parent directory
    assert "<script>.txt" not in below and "&lt;script&gt;.txt" in below  # names are escaped
    assert "c.txt" not in below  # only this level is listed
    redirect = curl("-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                    f"{server.url}/service/rest/repository/browse/files/a").stdout
    assert redirect == f"301 {server.url}/service/rest/repository/browse/files/a/"
    assert curl("-o", "/dev/null", "-w", "%{http_code}",
                f"{server.url}/service/rest/repository/browse/files/zzz/").stdout == "404"
    assert curl("-o", "/dev/null", "-w", "%{http_code}",
                f"{server.url}/service/rest/repository/browse/nope/").stdout == "404"
    # GET of the repository root of a raw repository leads to the browse page
    assert curl("-o", "/dev/null", "-w", "%{http_code}", f"{server.url}/repository/files/").stdout == "302"


def test_status_endpoints(app):
    assert app.client.simulate_get(f"{V1}/status").status_code == 200
    assert app.client.simulate_get(f"{V1}/status/writable").status_code == 200
