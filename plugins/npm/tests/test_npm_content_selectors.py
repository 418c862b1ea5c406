"""Content selectors with the real npm client: a user who may read and publish only ``@cwiq/*``."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from npm_kit import NpmClient, installed_version, make_package

from stowage.testing.harness import basic_auth

SECURITY = "/service/rest/v1/security"


def rest(server, method, path, body=None, *, auth=None):
    request = urllib.request.Request(server.url + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              **(auth or server.test_stowage.admin)})
    try:
        with urllib.request.urlopen(request) as response:
            data = response.read()
            return response.status, json.loads(data) if data else None
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def restrict_to_cwiq(server) -> None:
    assert rest(server, "POST", f"{SECURITY}/content-selectors", {
        "name": "cwiq", "description": "our scope", "expression": 'format == "npm" and path =^ "/@cwiq/"'})[0] == 204
    assert rest(server, "POST", f"{SECURITY}/privileges/repository-content-selector", {
        "name": "cwiq-read", "format": "npm", "repository": "npm-group", "contentSelector": "cwiq",
        "actions": ["READ", "BROWSE"]})[0] == 201
    assert rest(server, "POST", f"{SECURITY}/privileges/repository-content-selector", {
        "name": "cwiq-add", "format": "npm", "repository": "npm-hosted", "contentSelector": "cwiq",
        "actions": ["ADD"]})[0] == 201
    assert rest(server, "POST", f"{SECURITY}/roles", {
        "id": "cwiq-dev", "name": "cwiq-dev", "privileges": ["cwiq-read", "cwiq-add"]})[0] == 200
    assert rest(server, "POST", f"{SECURITY}/users", {
        "userId": "dev", "firstName": "D", "lastName": "Ev", "emailAddress": "dev@example.org",
        "password": "dev-pw", "status": "active", "roles": ["cwiq-dev"]})[0] == 200
    assert rest(server, "PUT", f"{SECURITY}/anonymous", {"enabled": False})[0] == 200


def test_selector_limits_install_view_search_and_publish(tmp_path, npm_server, npm_client):
    hosted = f"{npm_server.url}/repository/npm-hosted/"
    for name in ("@cwiq/lib", "other-lib"):
        npm_client.run("publish", str(make_package(tmp_path / "src", name, "1.0.0")), registry=hosted)
    restrict_to_cwiq(npm_server)

    dev = NpmClient(tmp_path / "dev-home", f"{npm_server.url}/repository/npm-group/")
    dev.auth(f"{npm_server.url}/repository/npm-group/", user="dev", password="dev-pw")
    dev.auth(hosted, user="dev", password="dev-pw")
    project = tmp_path / "project"
    project.mkdir()
    (project / "package.json").write_text(json.dumps({"name": "app", "version": "1.0.0"}))
    dev.run("install", "@cwiq/lib", cwd=project)
    assert installed_version(project, "@cwiq/lib") == "1.0.0"

    assert json.loads(dev.run("view", "@cwiq/lib", "--json").stdout)["name"] == "@cwiq/lib"
    hidden = dev.run("view", "other-lib", "--json", check=False)
    assert hidden.returncode != 0 and "E404" in hidden.stdout + hidden.stderr
    found = json.loads(dev.run("search", "stowage-test", "--json").stdout)
    assert [p["name"] for p in found] == ["@cwiq/lib"]
    npm_client.auth(f"{npm_server.url}/repository/npm-group/", user="admin",
                    password=npm_server.test_stowage.admin_password)
    admin_found = json.loads(npm_client.run("search", "stowage-test", "--json").stdout)
    assert sorted(p["name"] for p in admin_found) == ["@cwiq/lib", "other-lib"]

    refused = dev.run("publish", str(make_package(tmp_path / "src", "other-lib", "2.0.0")), registry=hosted,
                      check=False)
    assert refused.returncode != 0 and "E403" in refused.stdout + refused.stderr
    dev.run("publish", str(make_package(tmp_path / "src", "@cwiq/lib", "1.1.0")), registry=hosted)
    assert json.loads(dev.run("view", "@cwiq/lib", "version", "--json").stdout) == "1.1.0"

    # The audit trail names who tried what, from where, and what came of it.
    status, audit = rest(npm_server, "GET", "/service/rest/v1/audit?user=dev&action=content.upload")
    assert status == 200
    assert [(e["target"], e["repository"], e["result"], e["address"]) for e in audit["items"]] == [
        ("/@cwiq/lib", "npm-hosted", "success", "127.0.0.1"), ("/other-lib", "npm-hosted", "denied", "127.0.0.1")]

    # The tarball of a hidden package: nothing through the group; the hosted repository grants no read.
    for repository, status in (("npm-group", 404), ("npm-hosted", 403)):
        request = urllib.request.Request(f"{npm_server.url}/repository/{repository}/other-lib/-/other-lib-1.0.0.tgz",
                                         headers=basic_auth("dev", "dev-pw"))
        try:
            urllib.request.urlopen(request)
            raise AssertionError("the hidden tarball was served")
        except urllib.error.HTTPError as error:
            assert error.code == status


def test_selector_change_applies_at_once(tmp_path, npm_server, npm_client):
    hosted = f"{npm_server.url}/repository/npm-hosted/"
    npm_client.run("publish", str(make_package(tmp_path / "src", "other-lib", "1.0.0")), registry=hosted)
    restrict_to_cwiq(npm_server)
    url = f"/repository/npm-group/other-lib"
    assert rest(npm_server, "GET", url, auth=basic_auth("dev", "dev-pw"))[0] == 404
    assert rest(npm_server, "PUT", f"{SECURITY}/content-selectors/cwiq",
                {"expression": 'format == "npm" and (path =^ "/@cwiq/" or path =~ "/other-lib(/.*)?")'})[0] == 204
    assert rest(npm_server, "GET", url, auth=basic_auth("dev", "dev-pw"))[0] == 200
