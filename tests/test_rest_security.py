"""/service/rest/v1/security/{users,roles,anonymous} on a live server, driven with curl."""

import json
import subprocess

import time

import pytest
import urllib3

from stowage.testing.harness import basic_auth

V1 = "/service/rest/v1/security"


@pytest.fixture
def server(stowage_factory, live_server_factory):
    ts = stowage_factory()
    ts.create_repository(name="raw-hosted", format="raw", type="hosted")
    return ts, live_server_factory(ts)


def curl(url, *args, user=None, data=None, content_type="application/json"):
    command = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", url, *args]
    if user:
        command += ["-u", user]
    if data is not None:
        command += ["-H", f"Content-Type: {content_type}", "--data-binary",
                    data if isinstance(data, str) else json.dumps(data)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    body, _, status = out.rpartition("\n")
    return int(status), body


def test_anonymous_is_401_and_non_admin_is_403(server):
    ts, live = server
    ts.stowage.security.save_user(__import__("stowage.security", fromlist=["User"]).User(user_id="dev"), "dev-pw")
    for path in ("/users", "/roles", "/anonymous"):
        assert curl(f"{live.url}{V1}{path}")[0] == 401
        assert curl(f"{live.url}{V1}{path}", user="dev:dev-pw")[0] == 403


def test_user_lifecycle_never_returns_password_hashes(server):
    ts, live = server
    admin = f"admin:{ts.admin_password}"
    new = {"userId": "ci-bot", "firstName": "CI", "lastName": "Bot", "emailAddress": "ci@example.org",
           "password": "first-pw", "status": "active", "roles": ["nx-deployer"]}
    status, body = curl(f"{live.url}{V1}/users", "-X", "POST", user=admin, data=new)
    assert status == 200, body
    created = json.loads(body)
    assert created["userId"] == "ci-bot" and created["roles"] == ["nx-deployer"]
    assert "password" not in body and "scrypt" not in body
    assert curl(f"{live.url}{V1}/users", "-X", "POST", user=admin, data=new)[0] == 400
    assert curl(f"{live.url}{V1}/users", "-X", "POST", user=admin, data={**new, "userId": "x", "roles": ["nope"]})[0] == 400

    status, body = curl(f"{live.url}{V1}/users?userId=ci-", user=admin)
    assert status == 200 and [u["userId"] for u in json.loads(body)] == ["ci-bot"]
    assert "scrypt" not in curl(f"{live.url}{V1}/users", user=admin)[1]

    # the new user can write with its password; then the password changes (text/plain), old one stops working
    assert curl(f"{live.url}/repository/raw-hosted/a.txt", "-X", "PUT", user="ci-bot:first-pw", data="x",
                content_type="text/plain")[0] == 201
    assert curl(f"{live.url}{V1}/users/ci-bot/change-password", "-X", "PUT", user=admin, data="second-pw",
                content_type="text/plain")[0] == 204
    assert curl(f"{live.url}/repository/raw-hosted/b.txt", "-X", "PUT", user="ci-bot:first-pw", data="x",
                content_type="text/plain")[0] == 401
    assert curl(f"{live.url}/repository/raw-hosted/b.txt", "-X", "PUT", user="ci-bot:second-pw", data="x",
                content_type="text/plain")[0] == 201
    # a user may change their own password, not someone else's
    assert curl(f"{live.url}{V1}/users/ci-bot/change-password", "-X", "PUT", user="ci-bot:second-pw",
                data="third-pw", content_type="text/plain")[0] == 204
    assert curl(f"{live.url}{V1}/users/admin/change-password", "-X", "PUT", user="ci-bot:third-pw",
                data="pwned", content_type="text/plain")[0] == 403

    update = {**created, "roles": [], "status": "disabled"}
    assert curl(f"{live.url}{V1}/users/ci-bot", "-X", "PUT", user=admin, data=update)[0] == 204
    assert curl(f"{live.url}{V1}/users/ci-bot", "-X", "PUT", user=admin, data={**update, "userId": "other"})[0] == 400
    assert curl(f"{live.url}/repository/raw-hosted/c.txt", "-X", "PUT", user="ci-bot:third-pw", data="x",
                content_type="text/plain")[0] == 401
    assert curl(f"{live.url}{V1}/users/ci-bot", "-X", "DELETE", user=admin)[0] == 204
    assert curl(f"{live.url}{V1}/users/ci-bot", "-X", "DELETE", user=admin)[0] == 404
    assert curl(f"{live.url}{V1}/users/admin", "-X", "DELETE", user=admin)[0] == 400


def test_roles_grant_repository_privileges(server):
    ts, live = server
    admin = f"admin:{ts.admin_password}"
    role = {"id": "raw-writers", "name": "raw writers", "description": "write raw-hosted",
            "privileges": ["nx-repository-view-raw-raw-hosted-add", "nx-repository-view-raw-raw-hosted-read"],
            "roles": []}
    status, body = curl(f"{live.url}{V1}/roles", "-X", "POST", user=admin, data=role)
    assert status == 200 and json.loads(body)["privileges"] == role["privileges"]
    assert json.loads(curl(f"{live.url}{V1}/roles/raw-writers", user=admin)[1])["name"] == "raw writers"
    assert "raw-writers" in {r["id"] for r in json.loads(curl(f"{live.url}{V1}/roles", user=admin)[1])}
    curl(f"{live.url}{V1}/users", "-X", "POST", user=admin,
         data={"userId": "w", "firstName": "", "lastName": "", "emailAddress": "", "password": "w-pw",
               "status": "active", "roles": ["raw-writers"]})
    assert curl(f"{live.url}/repository/raw-hosted/w.txt", "-X", "PUT", user="w:w-pw", data="x",
                content_type="text/plain")[0] == 201
    assert curl(f"{live.url}{V1}/roles/raw-writers", "-X", "DELETE", user=admin)[0] == 409  # still held by w
    assert curl(f"{live.url}{V1}/roles/raw-writers", "-X", "PUT", user=admin,
                data={**role, "privileges": ["nx-repository-view-raw-raw-hosted-read"]})[0] == 204
    assert curl(f"{live.url}/repository/raw-hosted/w2.txt", "-X", "PUT", user="w:w-pw", data="x",
                content_type="text/plain")[0] == 403
    assert curl(f"{live.url}{V1}/roles/nx-admin", "-X", "PUT", user=admin, data={"id": "nx-admin"})[0] == 400
    assert curl(f"{live.url}{V1}/roles/nx-admin", "-X", "DELETE", user=admin)[0] == 400
    assert curl(f"{live.url}{V1}/roles/missing", user=admin)[0] == 404


def test_anonymous_switch_persists_and_applies_to_every_app_on_the_catalog(stowage_factory, live_server_factory,
                                                                           tmp_path):
    first = stowage_factory(data_dir=tmp_path / "shared")
    second = stowage_factory(data_dir=tmp_path / "shared")  # another node on the same catalog
    first.create_repository(name="raw-hosted", format="raw", type="hosted")
    one, two = live_server_factory(first), live_server_factory(second)
    admin = basic_auth("admin", first.admin_password)
    assert urllib3.request("GET", f"{one.url}{V1}/anonymous", headers=admin).json() == {
        "enabled": True, "userId": "anonymous", "realmName": "NexusAuthorizingRealm"}
    urllib3.request("PUT", f"{one.url}/repository/raw-hosted/f", body=b"data", headers=admin)
    assert urllib3.request("GET", f"{two.url}/repository/raw-hosted/f").status == 200

    response = urllib3.request("PUT", f"{one.url}{V1}/anonymous", json={"enabled": False}, headers=admin)
    assert response.status == 200 and response.json()["enabled"] is False
    # Another node reuses its reading of the setting for at most SecurityRealm.DECISION_TTL (1 s).
    deadline = time.monotonic() + 3
    while urllib3.request("GET", f"{two.url}/repository/raw-hosted/f").status != 401:
        assert time.monotonic() < deadline, "the other node still serves anonymous reads"
        time.sleep(0.1)
    assert urllib3.request("GET", f"{two.url}{V1}/anonymous", headers=admin).json()["enabled"] is False
    assert urllib3.request("PUT", f"{one.url}{V1}/anonymous", json={"enabled": "yes"}, headers=admin).status == 400

    restarted = stowage_factory(data_dir=tmp_path / "shared")  # config default (on) does not override it
    assert restarted.stowage.security.anonymous_access is False
