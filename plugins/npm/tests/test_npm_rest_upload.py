"""POST /service/rest/v1/components with npm.asset: the tarball from `npm pack` is published as `npm publish`
would publish it, and npm installs it."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path

from npm_kit import NpmClient, installed_version, make_package
from test_npm_hosted import http, new_project, tarball_bytes


def curl_upload(server, repository: str, *parts: str) -> tuple[int, str]:
    form = [arg for part in parts for arg in ("-F", part)]
    result = subprocess.run(["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "-u",
                             f"admin:{server.test_stowage.admin_password}", *form,
                             f"{server.url}/service/rest/v1/components?repository={repository}"],
                            capture_output=True, text=True, check=True, timeout=60)
    body, _, status = result.stdout.rpartition("\n")
    return int(status), body


def test_a_packed_tarball_uploaded_through_rest_installs_with_npm(tmp_path: Path, npm_server, npm_client: NpmClient):
    source = make_package(tmp_path / "src", "@acme/restpkg", "1.2.3")
    packed = npm_client.run("pack", "--json", "--pack-destination", str(tmp_path), cwd=source)
    tarball = tmp_path / json.loads(packed.stdout)[0]["filename"]
    assert curl_upload(npm_server, "npm-hosted", f"npm.asset=@{tarball}")[0] == 204

    document = json.loads(http("GET", f"{npm_server.url}/repository/npm-hosted/@acme%2frestpkg")[2])
    assert document["dist-tags"]["latest"] == "1.2.3"
    dist = document["versions"]["1.2.3"]["dist"]
    data = tarball.read_bytes()
    assert dist["shasum"] == hashlib.sha1(data).hexdigest()
    assert dist["integrity"] == "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    assert document["versions"]["1.2.3"]["_npmUser"]["name"] == "admin"
    assert document["description"] == "@acme/restpkg for tests"

    project = new_project(tmp_path, dependencies={"@acme/restpkg": "^1.2.0"})
    npm_client.run("install", cwd=project)
    assert installed_version(project, "@acme/restpkg") == "1.2.3"

    # the same checks as npm publish: no publishing over a version, nothing half-recorded on a refusal
    status, body = curl_upload(npm_server, "npm-hosted", f"npm.asset=@{tarball}")
    assert status == 403 and "previously published" in body
    not_a_tarball = tmp_path / "broken.tgz"
    not_a_tarball.write_bytes(b"definitely not gzip")
    status, body = curl_upload(npm_server, "npm-hosted", f"npm.asset=@{not_a_tarball}")
    assert status == 400 and "gzip" in body
    bad_name = tmp_path / "bad-name.tgz"
    bad_name.write_bytes(tarball_bytes("Not A Valid Name", "1.0.0"))
    assert curl_upload(npm_server, "npm-hosted", f"npm.asset=@{bad_name}")[0] == 400
    assert curl_upload(npm_server, "npm-hosted", f"npm.asset=@{tarball}", f"npm.asset=@{bad_name}")[0] == 400
    assert curl_upload(npm_server, "npm-group", f"npm.asset=@{tarball}")[0] == 405
    catalog = npm_server.test_stowage.stowage.catalog
    assert [a.path for a in catalog.iter_assets("npm-hosted")] == ["@acme/restpkg/-/restpkg-1.2.3.tgz"]
    assert json.loads(http("GET", f"{npm_server.url}/repository/npm-hosted/@acme%2frestpkg")[2])["versions"].keys() \
        == {"1.2.3"}
