"""Issue 10 items 3 and 4, issue 11 user tokens, with skopeo: Docker bearer tokens are good for the
registry only, die with their user's credentials, are signed with a key that is not in the catalog; user
tokens log skopeo in, and ``protectContent`` refuses the real password."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import urllib3

from docker_kit import skopeo
from oci_layout import Layout
from stowage.security import User

HTTP = urllib3.PoolManager(retries=False)  # (urllib3 would sleep through a 429's Retry-After and retry)


def token_for(server, user: str, password: str) -> str:
    response = HTTP.request("GET", f"{server.url}/v2/token?service=stowage&scope=repository:docker-hosted/x:pull",
                            headers=urllib3.make_headers(basic_auth=f"{user}:{password}"))
    assert response.status == 200, response.data
    return json.loads(response.data)["token"]


def push(tmp_path: Path, server, creds: str, tag: str = "1.0", check: bool = True):
    layout = Layout(tmp_path / f"img-{tag}")
    layout.tag(layout.image([{"a.txt": tag.encode()}]), tag)
    return skopeo("copy", f"oci:{layout.root}:{tag}", f"docker://{server.hosted}/orchestrator-app:{tag}",
                  "--dest-creds", creds, "--dest-tls-verify=false", check=check)


def test_docker_token_is_for_the_registry_only(tmp_path: Path, docker_layout) -> None:
    server = docker_layout()
    push(tmp_path, server, "admin:admin123")
    token = token_for(server, "admin", "admin123")
    inspected = skopeo("inspect", "--tls-verify=false", "--registry-token", token,
                       f"docker://{server.hosted}/orchestrator-app:1.0")
    assert json.loads(inspected.stdout)["Digest"].startswith("sha256:")
    # an admin's registry token is no admin credential for the REST API
    bearer = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    assert HTTP.request("GET", f"{server.url}/service/rest/v1/security/users", headers=bearer).status == 401
    created = HTTP.request("POST", f"{server.url}/service/rest/v1/security/users", headers=bearer,
                           body=json.dumps({"userId": "evil", "password": "x", "status": "active",
                                            "roles": ["nx-admin"]}))
    assert created.status == 401 and server.ts.stowage.security.get_user("evil") is None
    # nor for another format's content
    server.ts.create_repository(name="raw-hosted", format="raw", type="hosted")
    assert HTTP.request("PUT", f"{server.url}/repository/raw-hosted/x", body=b"x", headers=bearer).status == 401


def test_docker_token_dies_with_a_password_change(tmp_path: Path, docker_layout) -> None:
    server = docker_layout()
    security = server.ts.stowage.security
    security.save_user(User(user_id="ci", roles=("nx-deployer",)), "ci-pw")
    push(tmp_path, server, "ci:ci-pw")
    token = token_for(server, "ci", "ci-pw")
    target = f"docker://{server.hosted}/orchestrator-app:1.0"
    skopeo("inspect", "--tls-verify=false", "--registry-token", token, target)
    security.save_user(security.get_user("ci"), "ci-new-pw")
    refused = skopeo("inspect", "--tls-verify=false", "--registry-token", token, target, check=False)
    assert refused.returncode != 0
    # a user deleted and created again is a new identity: a token of the old one stays dead
    token = token_for(server, "ci", "ci-new-pw")
    security.delete_user("ci")
    security.save_user(User(user_id="ci", roles=("nx-deployer",)), "ci-new-pw")
    assert skopeo("inspect", "--tls-verify=false", "--registry-token", token, target, check=False).returncode != 0


def test_signing_key_is_a_private_file_and_not_in_the_catalog(tmp_path: Path, docker_layout) -> None:
    server = docker_layout()
    token_for(server, "admin", "admin123")
    data_dir = server.ts.stowage.settings.data_path
    key_file = data_dir / "secret.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    key = key_file.read_text().strip()
    catalog = sqlite3.connect(data_dir / "db" / "catalog.sqlite")
    documents = catalog.execute("SELECT namespace, key, value FROM documents").fetchall()
    assert not [d for d in documents if d[0] == "docker" and d[1] == "token-secret"]
    assert not [d for d in documents if key in d[2]]


def test_user_token_logs_skopeo_in_and_protect_content_refuses_the_password(tmp_path: Path, docker_layout) -> None:
    server = docker_layout()
    admin = urllib3.make_headers(basic_auth="admin:admin123")
    api = f"{server.url}/service/rest/v1/security"
    settings = {"enabled": True, "protectContent": True, "expirationEnabled": False, "expirationDays": 30}
    assert HTTP.request("PUT", f"{api}/user-tokens", body=json.dumps(settings),
                        headers={**admin, "Content-Type": "application/json"}).status == 200
    created = HTTP.request("POST", f"{api}/users/admin/NexusAuthenticatingRealm/user-token", headers=admin)
    assert created.status == 201
    pair = json.loads(created.data)
    creds = f"{pair['nameCode']}:{pair['passCode']}"
    refused = push(tmp_path, server, "admin:admin123", "1.0", check=False)
    assert refused.returncode != 0
    push(tmp_path, server, creds, "2.0")
    inspected = skopeo("inspect", "--tls-verify=false", "--creds", creds,
                       f"docker://{server.group}/orchestrator-app:2.0")
    assert json.loads(inspected.stdout)["Digest"].startswith("sha256:")


def test_token_service_throttles_password_guessing(docker_layout) -> None:
    server = docker_layout()
    server.ts.stowage.signins.BASE_DELAY = 30.0  # (a busy test machine must not outlast the first wait)
    url = f"http://{server.hosted}/v2/token?service=stowage"
    wrong = urllib3.make_headers(basic_auth="admin:guess")
    assert [HTTP.request("GET", url, headers=wrong).status for _ in range(5)] == [401] * 5
    throttled = HTTP.request("GET", url, headers=wrong)
    assert throttled.status == 429 and int(throttled.headers["Retry-After"]) >= 1
    assert json.loads(throttled.data)["errors"][0]["code"] == "TOOMANYREQUESTS"
    # the password grant goes through the same guard
    def grant(password):
        return HTTP.request("POST", url, body=f"grant_type=password&username=ci&password={password}&service=stowage",
                            headers={"Content-Type": "application/x-www-form-urlencoded"}).status

    assert [grant("guess") for _ in range(5)] == [401] * 5
    assert grant("guess") == 429
