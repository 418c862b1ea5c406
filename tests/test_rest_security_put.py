"""Issue 10 item 7: a PUT of /security takes the whole object; a partial body is a 400 naming what is
missing (Nexus's ValidationErrorXO list) and changes nothing, never a silent reset of roles or privileges."""

from __future__ import annotations

import json

import pytest

from stowage.security import User

from test_rest_tokens import V1, curl


@pytest.fixture
def server(stowage_factory, live_server_factory):
    ts = stowage_factory()
    ts.stowage.security.save_user(User(user_id="dev", roles=("nx-deployer",), first_name="Dev", last_name="Eloper",
                                       email_address="dev@example.org"), "dev-pw")
    ts.stowage.security.save_role({"id": "readers", "name": "readers", "description": "read all",
                                   "privileges": ["nx-repository-view-*-*-read"], "roles": [], "source": "default"})
    return ts, live_server_factory(ts)


def test_partial_user_put_is_a_400_naming_the_missing_fields(server):
    ts, live = server
    admin = f"admin:{ts.admin_password}"
    status, body = curl(f"{live.url}{V1}/users/dev", method="PUT", user=admin, data={"status": "active"})
    assert status == 400
    errors = json.loads(body)
    assert {e["id"] for e in errors} == {"PARAMETER userId", "PARAMETER firstName", "PARAMETER lastName",
                                         "PARAMETER emailAddress", "PARAMETER roles"}
    assert all(e["message"] for e in errors)
    user = ts.stowage.security.get_user("dev")
    assert (user.roles, user.first_name, user.email_address) == (("nx-deployer",), "Dev", "dev@example.org")
    status, body = curl(f"{live.url}{V1}/users/dev", method="PUT", user=admin,
                        data={"userId": "dev", "firstName": "Dev", "lastName": "Eloper", "emailAddress": "d@x.org",
                              "status": "active", "roles": "nx-admin"})
    assert status == 400 and json.loads(body) == [{"id": "PARAMETER roles", "message": "must be a list of strings"}]
    assert ts.stowage.security.get_user("dev").roles == ("nx-deployer",)
    whole = {"userId": "dev", "firstName": "D", "lastName": "E", "emailAddress": "d@x.org", "status": "active",
             "roles": [], "source": "default", "readOnly": False, "externalRoles": []}
    assert curl(f"{live.url}{V1}/users/dev", method="PUT", user=admin, data=whole)[0] == 204
    assert ts.stowage.security.get_user("dev").roles == ()


def test_partial_role_put_is_a_400_and_keeps_the_privileges(server):
    ts, live = server
    admin = f"admin:{ts.admin_password}"
    status, body = curl(f"{live.url}{V1}/roles/readers", method="PUT", user=admin, data={"description": "x"})
    assert status == 400
    assert {e["id"] for e in json.loads(body)} == {"PARAMETER id", "PARAMETER name", "PARAMETER privileges",
                                                   "PARAMETER roles"}
    assert ts.stowage.security.get_role("readers")["privileges"] == ["nx-repository-view-*-*-read"]
    whole = {"id": "readers", "name": "readers", "description": "none", "privileges": [], "roles": []}
    assert curl(f"{live.url}{V1}/roles/readers", method="PUT", user=admin, data=whole)[0] == 204
    assert ts.stowage.security.get_role("readers")["privileges"] == []


def test_anonymous_put_names_the_missing_field(server):
    ts, live = server
    status, body = curl(f"{live.url}{V1}/anonymous", method="PUT", user=f"admin:{ts.admin_password}",
                        data={"userId": "anonymous"})
    assert status == 400 and json.loads(body) == [{"id": "PARAMETER enabled", "message": "must be true or false"}]
