"""Issue 10 item 4 and issue 11 "User tokens": stored tokens bound to their user's identity and credential
generation, scoped, listed and revoked through the REST API; user tokens as Basic credentials and
``protectContent``. Driven with curl against a live server."""

from __future__ import annotations

import json

import pytest

from stowage.security import User
from test_rest_security import curl as security_curl

V1 = "/service/rest/v1/security"


@pytest.fixture
def server(stowage_factory, live_server_factory):
    ts = stowage_factory()
    ts.create_repository(name="raw-hosted", format="raw", type="hosted", storage={"writePolicy": "ALLOW"})
    ts.create_repository(name="npm-hosted", format="npm", type="hosted")
    ts.stowage.security.save_user(User(user_id="dev", roles=("nx-deployer",)), "dev-pw")
    ts.stowage.security.save_user(User(user_id="other", roles=("nx-deployer",)), "other-pw")
    return ts, live_server_factory(ts)


def curl(url, *args, user=None, bearer=None, data=None, method=None, content_type="application/json"):
    extra = (["-X", method] if method else []) + (["-H", f"Authorization: Bearer {bearer}"] if bearer else [])
    return security_curl(url, *args, *extra, user=user, data=data, content_type=content_type)


def npm_login(live, user, password):
    status, body = curl(f"{live.url}/repository/npm-hosted/-/user/org.couchdb.user:{user}", method="PUT",
                        data={"name": user, "password": password})
    assert status == 201, body
    return json.loads(body)["token"]


def test_npm_token_is_for_npm_only_and_never_a_rest_credential(server):
    ts, live = server
    token = npm_login(live, "admin", ts.admin_password)
    assert curl(f"{live.url}/repository/npm-hosted/-/whoami", bearer=token) == (200, '{"username":"admin"}')
    # An admin's npm token is not an admin credential for the REST API, nor good for other formats.
    assert curl(f"{live.url}{V1}/users", bearer=token)[0] == 401
    status, _ = curl(f"{live.url}{V1}/users", method="POST", bearer=token,
                     data={"userId": "evil", "password": "x", "status": "active", "roles": ["nx-admin"]})
    assert status == 401 and ts.stowage.security.get_user("evil") is None
    assert curl(f"{live.url}/repository/raw-hosted/x.txt", "--data-binary", "x", method="PUT", bearer=token)[0] == 401


def test_tokens_listed_without_secret_and_revoked_by_user_or_admin(server):
    ts, live = server
    token = npm_login(live, "dev", "dev-pw")
    second = npm_login(live, "dev", "dev-pw")
    status, body = curl(f"{live.url}{V1}/users/dev/tokens", user="dev:dev-pw")
    assert status == 200
    listed = json.loads(body)
    assert [t["kind"] for t in listed] == ["npm", "npm"]
    assert token not in body and second not in body
    assert set(listed[0]) >= {"id", "kind", "created", "expires", "lastUsed"}
    assert listed[0]["expires"] is not None
    # another non-admin user may neither list nor revoke them; the admin may
    assert curl(f"{live.url}{V1}/users/dev/tokens", user="other:other-pw")[0] == 403
    assert curl(f"{live.url}{V1}/users/dev/tokens/{listed[0]['id']}", method="DELETE", user="other:other-pw")[0] == 403
    assert curl(f"{live.url}{V1}/users/dev/tokens", user=f"admin:{ts.admin_password}")[0] == 200
    # the token cannot be used to manage tokens (it is not a REST credential)
    assert curl(f"{live.url}{V1}/users/dev/tokens", bearer=token)[0] == 401

    revoked = next(t for t in listed if t["id"] in _ids(ts, token))
    assert curl(f"{live.url}{V1}/users/dev/tokens/{revoked['id']}", method="DELETE", user="dev:dev-pw")[0] == 204
    assert curl(f"{live.url}/repository/npm-hosted/-/whoami", bearer=token)[0] == 401
    assert curl(f"{live.url}/repository/npm-hosted/-/whoami", bearer=second)[0] == 200
    assert curl(f"{live.url}{V1}/users/dev/tokens/{revoked['id']}", method="DELETE",
                user=f"admin:{ts.admin_password}")[0] == 404
    remaining = json.loads(curl(f"{live.url}{V1}/users/dev/tokens", user=f"admin:{ts.admin_password}")[1])
    assert [t["id"] for t in remaining] == [t["id"] for t in listed if t is not revoked]
    assert remaining[0]["lastUsed"] is not None


def _ids(ts, token):
    import hashlib

    return {hashlib.sha256(token.encode()).hexdigest()[:24]}


@pytest.mark.parametrize("change", ["password", "disable", "delete-and-recreate"])
def test_credential_change_revokes_tokens(server, change):
    ts, live = server
    admin = f"admin:{ts.admin_password}"
    token = npm_login(live, "dev", "dev-pw")
    assert curl(f"{live.url}/repository/npm-hosted/-/whoami", bearer=token)[0] == 200
    if change == "password":
        assert curl(f"{live.url}{V1}/users/dev/change-password", method="PUT", user="dev:dev-pw",
                    data="new-pw", content_type="text/plain")[0] == 204
    elif change == "disable":
        user = {"userId": "dev", "firstName": "", "lastName": "", "emailAddress": "", "status": "disabled",
                "roles": ["nx-deployer"]}
        assert curl(f"{live.url}{V1}/users/dev", method="PUT", user=admin, data=user)[0] == 204
        assert curl(f"{live.url}{V1}/users/dev", method="PUT", user=admin, data={**user, "status": "active"})[0] == 204
    else:
        assert curl(f"{live.url}{V1}/users/dev", method="DELETE", user=admin)[0] == 204
        created = {"userId": "dev", "firstName": "New", "lastName": "Dev", "emailAddress": "d@example.org",
                   "password": "dev-pw", "status": "active", "roles": ["nx-deployer"]}
        assert curl(f"{live.url}{V1}/users", method="POST", user=admin, data=created)[0] == 200
    # the old token stays dead, even once the account is active again with the same id and password
    assert curl(f"{live.url}/repository/npm-hosted/-/whoami", bearer=token)[0] == 401


def test_expired_token_is_refused(stowage_factory, live_server_factory):
    ts = stowage_factory(npm_token_days=0)
    ts.create_repository(name="npm-hosted", format="npm", type="hosted")
    live = live_server_factory(ts)
    user = ts.stowage.security.get_user("admin")
    secret, _ = ts.stowage.tokens.issue(user, "npm", audiences=("npm",), lifetime=-1)
    assert curl(f"{live.url}/repository/npm-hosted/-/whoami", bearer=secret)[0] == 401
    # and a lifetime of 0 days means "no expiry" for npm login
    token = npm_login(live, "admin", ts.admin_password)
    assert curl(f"{live.url}/repository/npm-hosted/-/whoami", bearer=token)[0] == 200


# -- user tokens ------------------------------------------------------------------------------------------

def enable_user_tokens(live, admin, **extra):
    settings = {"enabled": True, "protectContent": False, "expirationEnabled": True, "expirationDays": 30,
                **extra}
    status, body = curl(f"{live.url}{V1}/user-tokens", method="PUT", user=admin, data=settings)
    assert status == 200, body
    return json.loads(body)


def test_user_token_lifecycle_and_shapes(server):
    ts, live = server
    admin = f"admin:{ts.admin_password}"
    url = f"{live.url}{V1}/users/dev/NexusAuthenticatingRealm/user-token"
    assert curl(url, method="POST", user="dev:dev-pw")[0] == 400  # the capability is off by default
    assert json.loads(curl(f"{live.url}{V1}/user-tokens", user=admin)[1]) == {
        "enabled": False, "expirationEnabled": False, "expirationDays": 30, "protectContent": False}
    assert curl(f"{live.url}{V1}/user-tokens", user="dev:dev-pw")[0] == 403
    assert enable_user_tokens(live, admin)["enabled"] is True

    status, body = curl(url, method="POST", user="dev:dev-pw")
    assert status == 201, body
    created = json.loads(body)
    assert created["userId"] == "dev" and created["realm"] == "NexusAuthenticatingRealm"
    assert created["expires"] and created["isExpired"] is False
    name, code = created["nameCode"], created["passCode"]
    # typed on command lines (twine -p, docker login -p): a leading "-" would read as an option
    assert code.isascii() and code.isalnum() and len(code) >= 40
    assert curl(url, method="POST", user="dev:dev-pw")[0] == 409
    status, body = curl(url, user="dev:dev-pw")
    assert status == 200 and json.loads(body)["nameCode"] == name and code not in body and "passCode" not in body
    assert curl(url, user="other:other-pw")[0] == 403
    assert curl(f"{live.url}{V1}/users/dev/LdapRealm/user-token", user=admin)[0] == 404
    assert curl(f"{live.url}{V1}/users/dev/NoSuchRealm/user-token", user=admin)[0] == 422

    # the pair works as Basic credentials, with the user's roles (deployer: may write, not administer)
    assert curl(f"{live.url}/repository/raw-hosted/t.txt", "--data-binary", "hi", method="PUT",
                user=f"{name}:{code}")[0] == 201
    assert curl(f"{live.url}{V1}/users", user=f"{name}:{code}")[0] == 403
    assert curl(f"{live.url}/repository/raw-hosted/t.txt", user=f"{name}:x{code}")[0] == 401

    # the admin revokes it; then it is gone
    assert curl(url, method="DELETE", user=admin)[0] == 204
    assert curl(f"{live.url}/repository/raw-hosted/t.txt", user=f"{name}:{code}")[0] == 401
    assert curl(url, user="dev:dev-pw")[0] == 404


def test_user_token_settings_put_takes_the_model(server):
    ts, live = server
    admin = f"admin:{ts.admin_password}"
    status, body = curl(f"{live.url}{V1}/user-tokens", method="PUT", user=admin, data={"expirationDays": 5})
    assert status == 400
    assert {e["id"] for e in json.loads(body)} == {"PARAMETER enabled", "PARAMETER protectContent"}
    status, body = curl(f"{live.url}{V1}/user-tokens", method="PUT", user=admin,
                        data={"enabled": True, "protectContent": False, "expirationDays": 0})
    assert status == 400 and json.loads(body)[0]["id"] == "PARAMETER expirationDays"
    assert json.loads(curl(f"{live.url}{V1}/user-tokens", user=admin)[1])["enabled"] is False


def test_reset_all_and_disabling_the_capability(server):
    ts, live = server
    admin = f"admin:{ts.admin_password}"
    enable_user_tokens(live, admin)
    pairs = []
    for user, password in (("dev", "dev-pw"), ("other", "other-pw")):
        body = json.loads(curl(f"{live.url}{V1}/users/{user}/NexusAuthenticatingRealm/user-token",
                               method="POST", user=f"{user}:{password}")[1])
        pairs.append(f"{body['nameCode']}:{body['passCode']}")
    npm = npm_login(live, "dev", "dev-pw")
    enable_user_tokens(live, admin, enabled=False)
    assert curl(f"{live.url}/repository/raw-hosted/", user=pairs[0])[0] == 401
    enable_user_tokens(live, admin)
    assert curl(f"{live.url}/repository/npm-hosted/-/whoami", user=pairs[0])[0] == 200
    assert curl(f"{live.url}{V1}/user-tokens", method="DELETE", user=admin)[0] == 204
    for pair in pairs:
        assert curl(f"{live.url}/repository/npm-hosted/-/whoami", user=pair)[0] == 401
    # only user tokens were reset
    assert curl(f"{live.url}/repository/npm-hosted/-/whoami", bearer=npm)[0] == 200


def test_protect_content_refuses_passwords_on_content_only(server):
    ts, live = server
    admin = f"admin:{ts.admin_password}"
    enable_user_tokens(live, admin, protectContent=True)
    body = json.loads(curl(f"{live.url}{V1}/users/dev/NexusAuthenticatingRealm/user-token", method="POST",
                           user="dev:dev-pw")[1])
    pair = f"{body['nameCode']}:{body['passCode']}"
    status, out = curl(f"{live.url}/repository/raw-hosted/p.txt", "--data-binary", "x", method="PUT",
                       user="dev:dev-pw")
    assert status == 401 and "user token" in out
    assert curl(f"{live.url}/repository/raw-hosted/p.txt", "--data-binary", "x", method="PUT", user=pair)[0] == 201
    # the REST API still takes the password (an admin must be able to switch it off again)
    assert curl(f"{live.url}{V1}/user-tokens", user=admin)[0] == 200
    # npm login with the password is refused too; with the pair it works
    assert curl(f"{live.url}/repository/npm-hosted/-/user/org.couchdb.user:dev", method="PUT",
                data={"name": "dev", "password": "dev-pw"})[0] == 401
    name, code = pair.split(":", 1)
    status, out = curl(f"{live.url}/repository/npm-hosted/-/user/org.couchdb.user:{name}", method="PUT",
                       data={"name": name, "password": code})
    assert status == 201, out


def test_admin_lists_user_tokens_with_filters(server):
    ts, live = server
    admin = f"admin:{ts.admin_password}"
    enable_user_tokens(live, admin)
    for user, password in (("dev", "dev-pw"), ("other", "other-pw")):
        assert curl(f"{live.url}{V1}/users/{user}/NexusAuthenticatingRealm/user-token", method="POST",
                    user=f"{user}:{password}")[0] == 201
    status, body = curl(f"{live.url}{V1}/user-tokens/tokens", user=admin)
    assert status == 200 and "passCode" not in body
    listing = json.loads(body)
    assert [t["userId"] for t in listing["items"]] == ["dev", "other"] and listing["continuationToken"] is None
    only = json.loads(curl(f"{live.url}{V1}/user-tokens/tokens?userId=other&realm=NexusAuthenticatingRealm",
                           user=admin)[1])
    assert [t["userId"] for t in only["items"]] == ["other"]
    assert json.loads(curl(f"{live.url}{V1}/user-tokens/tokens?skip=1&limit=1", user=admin)[1])["items"][0][
        "userId"] == "other"
    status, body = curl(f"{live.url}{V1}/user-tokens/tokens?limit=1000", user=admin)
    assert status == 400 and json.loads(body)[0]["id"] == "PARAMETER limit"
    assert curl(f"{live.url}{V1}/user-tokens/tokens", user="dev:dev-pw")[0] == 403


def test_a_user_without_a_record_gets_no_token_and_no_5xx(stowage_app):
    from stowage.errors import Forbidden

    with pytest.raises(Forbidden):
        stowage_app.stowage.tokens.issue(User(user_id="directory-only"), "npm", audiences=("npm",), lifetime=60)


def test_token_changes_are_in_the_audit_trail(server):
    ts, live = server
    admin = f"admin:{ts.admin_password}"
    token = npm_login(live, "dev", "dev-pw")
    token_id = _ids(ts, token).pop()
    assert curl(f"{live.url}{V1}/users/dev/tokens/{token_id}", method="DELETE", user=admin)[0] == 204
    enable_user_tokens(live, admin)
    assert curl(f"{live.url}{V1}/users/dev/NexusAuthenticatingRealm/user-token", method="POST",
                user="dev:dev-pw")[0] == 201
    events = {(e["action"], e["target"], e["user"]) for e in ts.stowage.audit.query(limit=50)}
    assert ("token.delete", token_id, "admin") in events
    assert ("token.create", "dev", "dev") in events
    assert any(action == "token.update" and user == "admin" for action, _, user in events)  # the settings
