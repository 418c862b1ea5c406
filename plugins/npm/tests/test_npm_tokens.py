"""Issue 10 item 4 and issue 11 user tokens with the real npm client: a login token is listed (without
its secret) through the REST API, dies with a password change, is no REST credential; a user token works
as npm's ``_auth``, and with ``protectContent`` the real password does not."""

from __future__ import annotations

import json
from pathlib import Path

import urllib3

from npm_kit import NpmClient, make_package
from stowage.security import User

HTTP = urllib3.PoolManager()
API = "/service/rest/v1/security"


def rest(server, method, path, *, user, password, body=None):
    headers = urllib3.make_headers(basic_auth=f"{user}:{password}")
    if body is not None:
        headers["Content-Type"] = "application/json" if not isinstance(body, str) else "text/plain"
        body = body if isinstance(body, str) else json.dumps(body)
    response = HTTP.request(method, f"{server.url}{API}{path}", headers=headers, body=body)
    return response.status, response.data


def test_login_token_listed_and_revoked_by_a_password_change(tmp_path: Path, npm_server) -> None:
    npm_server.stowage.security.save_user(User(user_id="dev", roles=("nx-deployer",)), "dev-pw")
    hosted = f"{npm_server.url}/repository/npm-hosted/"
    client = NpmClient(tmp_path / "home", hosted)
    code, output = client.run_tty("login", answers=["dev", "dev-pw"])
    assert code == 0, output
    token = client.npmrc.read_text().split("_authToken=")[1].split()[0]
    client.run("publish", cwd=make_package(tmp_path / "src", "dev-pkg", "1.0.0"))

    status, body = rest(npm_server, "GET", "/users/dev/tokens", user="dev", password="dev-pw")
    assert status == 200 and token.encode() not in body
    (listed,) = json.loads(body)
    assert listed["kind"] == "npm" and listed["lastUsed"] is not None and listed["expires"] is not None
    # the npm token is not a credential for the REST API
    assert HTTP.request("GET", f"{npm_server.url}{API}/users/dev/tokens",
                        headers={"Authorization": f"Bearer {token}"}).status == 401

    assert rest(npm_server, "PUT", "/users/dev/change-password", user="dev", password="dev-pw",
                body="dev-new-pw")[0] == 204
    refused = client.run("publish", cwd=make_package(tmp_path / "src", "dev-pkg", "1.0.1"), check=False)
    assert refused.returncode != 0 and "401" in refused.stderr + refused.stdout
    assert client.run("whoami", check=False).returncode != 0
    assert json.loads(rest(npm_server, "GET", "/users/dev/tokens", user="dev", password="dev-new-pw")[1]) == []


def test_user_token_as_npm_auth_and_protect_content(tmp_path: Path, npm_server) -> None:
    password = npm_server.test_stowage.admin_password
    settings = {"enabled": True, "protectContent": True, "expirationEnabled": True, "expirationDays": 1}
    assert rest(npm_server, "PUT", "/user-tokens", user="admin", password=password, body=settings)[0] == 200
    status, body = rest(npm_server, "POST", "/users/admin/NexusAuthenticatingRealm/user-token", user="admin",
                        password=password)
    assert status == 201
    pair = json.loads(body)
    hosted = f"{npm_server.url}/repository/npm-hosted/"
    client = NpmClient(tmp_path / "home", hosted)
    client.auth(hosted, user="admin", password=password)
    refused = client.run("publish", cwd=make_package(tmp_path / "src", "ut-pkg", "1.0.0"), check=False)
    assert refused.returncode != 0
    client.auth(hosted, user=pair["nameCode"], password=pair["passCode"])
    client.run("publish", cwd=make_package(tmp_path / "src", "ut-pkg", "1.0.0"))
    whoami = HTTP.request("GET", f"{hosted}-/whoami",
                          headers=urllib3.make_headers(basic_auth=f"{pair['nameCode']}:{pair['passCode']}"))
    assert json.loads(whoami.data) == {"username": "admin"}  # the pair stands for its user
    assert json.loads(client.run("view", "ut-pkg", "--json").stdout)["version"] == "1.0.0"
