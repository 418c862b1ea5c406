"""Hosted npm repositories driven by the real npm client (and raw HTTP where npm hides the answer)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from npm_kit import NpmClient, installed_version, make_package

PACKAGES = [("@acme/util", "1.0.0"), ("@acme/util", "1.1.0"), ("left-pad-x", "1.0.0")]


def publish_all(client: NpmClient, server, tmp_path: Path) -> str:
    hosted = f"{server.url}/repository/npm-hosted/"
    for name, version in PACKAGES:
        client.run("publish", registry=hosted, cwd=make_package(tmp_path / "src", name, version))
    return hosted


def new_project(tmp_path: Path, name: str = "project", dependencies: dict | None = None) -> Path:
    project = tmp_path / name
    project.mkdir()
    (project / "package.json").write_text(json.dumps({"name": name, "version": "1.0.0",
                                                      "dependencies": dependencies or {}}))
    return project


def http(method: str, url: str, *, body: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def admin_headers(server) -> dict:
    token = base64.b64encode(f"admin:{server.test_stowage.admin_password}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}


def tarball_bytes(name: str, version: str) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        data = json.dumps({"name": name, "version": version}).encode()
        info = tarfile.TarInfo("package/package.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def publish_document(name: str, version: str, tarball: bytes, *, integrity: str | None = None) -> bytes:
    sha512 = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    filename = f"{name.rpartition('/')[2]}-{version}.tgz"
    return json.dumps({
        "_id": name, "name": name, "dist-tags": {"latest": version},
        "versions": {version: {"name": name, "version": version, "dist": {
            "integrity": integrity or sha512, "shasum": hashlib.sha1(tarball).hexdigest(),
            "tarball": f"http://ignored/{name}/-/{filename}"}}},
        "_attachments": {filename: {"content_type": "application/octet-stream",
                                    "data": base64.b64encode(tarball).decode(), "length": len(tarball)}},
    }).encode()


def test_acceptance_publish_install_range_and_dist_tag(tmp_path, npm_server, npm_client):
    publish_all(npm_client, npm_server, tmp_path)
    project = new_project(tmp_path)
    npm_client.run("install", "@acme/util@^1.0.0", "left-pad-x@1.0.0", cwd=project)
    assert installed_version(project, "@acme/util") == "1.1.0"
    assert installed_version(project, "left-pad-x") == "1.0.0"

    hosted = f"{npm_server.url}/repository/npm-hosted/"
    npm_client.run("dist-tag", "add", "@acme/util@1.0.0", "stable", registry=hosted)
    tags = npm_client.run("dist-tag", "ls", "@acme/util", registry=hosted).stdout
    assert "stable: 1.0.0" in tags and "latest: 1.1.0" in tags
    other = new_project(tmp_path, "other")
    npm_client.run("install", "@acme/util@stable", cwd=other)
    assert installed_version(other, "@acme/util") == "1.0.0"
    npm_client.run("dist-tag", "rm", "@acme/util", "stable", registry=hosted)
    assert "stable" not in npm_client.run("dist-tag", "ls", "@acme/util", registry=hosted).stdout

    view = json.loads(npm_client.run("view", "@acme/util", "--json").stdout)
    assert view["versions"] == ["1.0.0", "1.1.0"] and view["dist-tags"]["latest"] == "1.1.0"
    assert view["dist"]["tarball"] == f"{npm_server.url}/repository/npm-group/@acme/util/-/util-1.1.0.tgz"


def test_republish_integrity_and_anonymous_are_refused(tmp_path, npm_server, npm_client):
    hosted = publish_all(npm_client, npm_server, tmp_path)
    again = npm_client.run("publish", registry=hosted, check=False,
                           cwd=make_package(tmp_path / "again", "@acme/util", "1.0.0", body="changed"))
    assert again.returncode != 0 and "previously published" in again.stderr  # npm checks the packument first
    status, _, body = http("PUT", f"{npm_server.url}/repository/npm-hosted/@acme%2futil",  # the server refuses too
                           body=publish_document("@acme/util", "1.0.0", tarball_bytes("@acme/util", "1.0.0")),
                           headers=admin_headers(npm_server))
    assert status == 403 and "previously published" in json.loads(body)["error"]

    url = f"{npm_server.url}/repository/npm-hosted/@acme%2fnew"
    tarball = tarball_bytes("@acme/new", "1.0.0")
    bad = "sha512-" + base64.b64encode(hashlib.sha512(b"other").digest()).decode()
    status, headers, body = http("PUT", url, body=publish_document("@acme/new", "1.0.0", tarball, integrity=bad),
                                 headers=admin_headers(npm_server))
    assert status == 400 and "integrity" in json.loads(body)["error"]
    assert headers["Content-Type"].startswith("application/json")

    status, _, body = http("PUT", url, body=publish_document("@acme/new", "1.0.0", tarball),
                           headers={"Content-Type": "application/json"})
    assert status == 401 and json.loads(body)["error"]

    # the tarball's package.json must agree with the document; the name with the URL; base64 must decode
    status, _, body = http("PUT", url, body=publish_document("@acme/new", "1.0.0", tarball_bytes("@acme/new", "2.0.0")),
                           headers=admin_headers(npm_server))
    assert status == 400 and "package.json" in json.loads(body)["error"]
    status, _, body = http("PUT", f"{npm_server.url}/repository/npm-hosted/other-name",
                           body=publish_document("@acme/new", "1.0.0", tarball), headers=admin_headers(npm_server))
    assert status == 400 and "does not match" in json.loads(body)["error"]
    corrupt = json.loads(publish_document("@acme/new", "1.0.0", tarball))
    corrupt["_attachments"]["new-1.0.0.tgz"]["data"] = "!!not base64!!"
    status, _, body = http("PUT", url, body=json.dumps(corrupt).encode(), headers=admin_headers(npm_server))
    assert status == 400 and "base64" in json.loads(body)["error"]

    # nothing of the refused publishes is visible
    status, _, _ = http("GET", url)
    assert status == 404
    catalog = npm_server.stowage.catalog
    assert catalog.get_asset("npm-hosted", "@acme/new/-/new-1.0.0.tgz") is None
    status, _, _ = http("PUT", url, body=publish_document("@acme/new", "1.0.0", tarball),
                        headers=admin_headers(npm_server))
    assert status == 201


def test_name_policy_is_enforced(tmp_path, npm_server):
    npm_server.test_stowage.stowage.save_repository(npm_server.stowage.parse_repository(
        {"name": "npm-private", "format": "npm", "type": "hosted", "namePolicy": {"allow": ["@acme/*"]}}),
        create=True)
    url = f"{npm_server.url}/repository/npm-private/left-pad-y"
    status, _, body = http("PUT", url, body=publish_document("left-pad-y", "1.0.0", tarball_bytes("left-pad-y", "1.0.0")),
                           headers=admin_headers(npm_server))
    assert status == 403 and "name policy" in json.loads(body)["error"]


def test_abbreviated_gzip_and_forwarded_urls(tmp_path, npm_server, npm_client):
    publish_all(npm_client, npm_server, tmp_path)
    url = f"{npm_server.url}/repository/npm-group/@acme%2futil"
    status, headers, body = http("GET", url, headers={
        "Accept": "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*",
        "Accept-Encoding": "gzip", "Host": "npm.example.org:8081"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert headers["Content-Type"] == "application/vnd.npm.install-v1+json"
    corgi = json.loads(gzip.decompress(body))
    assert set(corgi) == {"name", "modified", "dist-tags", "versions"}
    manifest = corgi["versions"]["1.0.0"]
    assert "readme" not in manifest and "description" not in manifest
    assert manifest["dist"]["tarball"] == "http://npm.example.org:8081/repository/npm-group/@acme/util/-/util-1.0.0.tgz"
    # behind a reverse proxy (X-Forwarded-*; the in-process client, as waitress drops untrusted proxy headers)
    forwarded = npm_server.test_stowage.client.simulate_get(
        "/repository/npm-group/@acme%2futil", headers={"X-Forwarded-Proto": "https",
                                                      "X-Forwarded-Host": "npm.example.org"})
    assert forwarded.json["versions"]["1.0.0"]["dist"]["tarball"] == \
        "https://npm.example.org/repository/npm-group/@acme/util/-/util-1.0.0.tgz"
    assert manifest["dist"]["integrity"].startswith("sha512-")
    status, headers, body = http("GET", url)
    full = json.loads(body)
    assert "Content-Encoding" not in headers
    assert full["time"]["1.1.0"] and full["time"]["created"] and full["time"]["modified"]
    assert full["description"] == "@acme/util for tests"
    status, headers2, _ = http("GET", url, headers={"If-None-Match": headers["ETag"]})
    assert status == 304


def test_deprecate_unpublish_view_search_ping(tmp_path, npm_server, npm_client):
    hosted = publish_all(npm_client, npm_server, tmp_path)
    npm_client.run("deprecate", "@acme/util@1.0.0", "use 1.1", registry=hosted)
    view = json.loads(npm_client.run("view", "@acme/util@1.0.0", "--json").stdout)
    assert view["deprecated"] == "use 1.1"
    project = new_project(tmp_path)
    install = npm_client.run("install", "@acme/util@1.0.0", cwd=project)
    assert "deprecated" in install.stderr

    found = json.loads(npm_client.run("search", "acme", "--json").stdout)
    assert [p["name"] for p in found] == ["@acme/util"]
    assert found[0]["publisher"]["username"] == "admin" and found[0]["maintainers"][0]["username"]
    # npm 11's table output reads publisher.username and maintainers[].username (crashed without them)
    table = npm_client.run("search", "acme")
    assert "@acme/util" in table.stdout and "ERR_INVALID_ARG_TYPE" not in table.stderr
    assert json.loads(npm_client.run("ping", "--json", registry=hosted).stdout)["registry"] == hosted
    assert npm_client.run("ping", registry=f"{npm_server.url}/repository/no-such-repo/", check=False).returncode

    npm_client.run("unpublish", "@acme/util@1.0.0", registry=hosted)
    view = json.loads(npm_client.run("view", "@acme/util", "--json").stdout)
    assert view["versions"] == ["1.1.0"]
    status, _, _ = http("GET", f"{npm_server.url}/repository/npm-hosted/@acme/util/-/util-1.0.0.tgz")
    assert status == 404
    npm_client.run("unpublish", "left-pad-x", "--force", registry=hosted)
    status, _, _ = http("GET", f"{npm_server.url}/repository/npm-hosted/left-pad-x")
    assert status == 404
    assert npm_server.stowage.catalog.get_asset("npm-hosted", "left-pad-x/-/left-pad-x-1.0.0.tgz") is None


def test_login_token_publish_whoami_logout(tmp_path, npm_server):
    hosted = f"{npm_server.url}/repository/npm-hosted/"
    client = NpmClient(tmp_path / "login-home", hosted)
    code, output = client.run_tty("login", answers=["admin", "wrong-password"])
    assert code != 0 and "401" in output
    code, output = client.run_tty("login", answers=["admin", npm_server.test_stowage.admin_password])
    assert code == 0, output
    assert "_authToken=npm_" in client.npmrc.read_text()
    assert client.run("whoami").stdout.strip() == "admin"
    client.run("publish", cwd=make_package(tmp_path / "src", "token-pkg", "1.0.0"))
    token = client.npmrc.read_text().split("_authToken=")[1].split()[0]
    client.run("logout")
    status, _, _ = http("GET", f"{hosted}-/whoami", headers={"Authorization": f"Bearer {token}"})
    assert status == 401
    assert client.run("whoami", check=False).returncode != 0


def test_concurrent_publishes_of_one_package_keep_every_version(npm_server):
    url = f"{npm_server.url}/repository/npm-hosted/busy"
    results = []

    def publish(version: str) -> None:
        document = publish_document("busy", version, tarball_bytes("busy", version))
        results.append(http("PUT", url, body=document, headers=admin_headers(npm_server))[0])

    threads = [threading.Thread(target=publish, args=(f"1.0.{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [201] * 8
    _, _, body = http("GET", url)
    assert sorted(json.loads(body)["versions"]) == sorted(f"1.0.{i}" for i in range(8))


@pytest.mark.parametrize("path", ["-/v1/login"])
def test_web_login_is_declined_so_npm_falls_back(npm_server, path):
    status, _, body = http("POST", f"{npm_server.url}/repository/npm-hosted/{path}", body=b"{}")
    assert status == 404 and json.loads(body)["error"]


def test_rest_component_delete_removes_the_version_from_the_packument(npm_server):
    url = f"{npm_server.url}/repository/npm-hosted/gone"
    for version in ("1.0.0", "2.0.0"):
        assert http("PUT", url, body=publish_document("gone", version, tarball_bytes("gone", version)),
                    headers=admin_headers(npm_server))[0] == 201
    client = npm_server.test_stowage.client
    items = client.simulate_get("/service/rest/v1/components", params={"repository": "npm-hosted"},
                                headers=npm_server.test_stowage.admin).json["items"]
    target = next(c for c in items if c["version"] == "2.0.0")
    assert client.simulate_delete(f"/service/rest/v1/components/{target['id']}",
                                  headers=npm_server.test_stowage.admin).status_code == 204
    document = json.loads(http("GET", url)[2])
    assert list(document["versions"]) == ["1.0.0"] and document["dist-tags"]["latest"] == "1.0.0"
