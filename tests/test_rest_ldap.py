"""``/service/rest/v1/security/ldap`` and ``/security/realms``: Nexus's shapes, validation, admin only."""

from __future__ import annotations

import pytest

from stowage.testing.harness import basic_auth
from stowage.testing.slapd import SlapdServer

LDAP = "/service/rest/v1/security/ldap"
REALMS = "/service/rest/v1/security/realms"

READ_FIELDS = {
    "id", "order", "name", "protocol", "host", "port", "searchBase", "authScheme", "authRealm", "authUsername",
    "useTrustStore", "connectionTimeoutSeconds", "connectionRetryDelaySeconds", "maxIncidentsCount",
    "userBaseDn", "userSubtree", "userObjectClass", "userLdapFilter", "userIdAttribute", "userRealNameAttribute",
    "userEmailAddressAttribute", "userPasswordAttribute", "ldapGroupsAsRoles", "groupType", "groupBaseDn",
    "groupSubtree", "groupObjectClass", "groupIdAttribute", "groupMemberAttribute", "groupMemberFormat",
    "userMemberOfAttribute"}


@pytest.fixture
def directory(tmp_path) -> SlapdServer:
    # Not started: these tests only store settings (a server need not be reachable to be configured).
    return SlapdServer(tmp_path / "slapd")


def test_create_read_update_delete(stowage_app, directory):
    client, admin = stowage_app.client, stowage_app.admin
    body = directory.server_settings("corp")
    assert client.simulate_post(LDAP, json=body, headers=admin).status_code == 201
    listed = client.simulate_get(LDAP, headers=admin).json
    assert [s["name"] for s in listed] == ["corp"]
    read = client.simulate_get(f"{LDAP}/corp", headers=admin).json
    assert set(read) == READ_FIELDS  # exactly ReadLdapServerXo: the bind password is never returned
    assert "authPassword" not in read and directory.admin_password not in str(listed)
    assert read["groupType"] == "static" and read["order"] == 0 and read["id"]
    assert read["port"] == directory.port and read["authUsername"] == directory.admin_dn

    # An update that omits authPassword keeps the stored one; id and order in the body are ignored.
    update = {**read, "name": "corporate", "port": 1389, "order": 7, "id": "forged"}
    assert client.simulate_put(f"{LDAP}/corp", json=update, headers=admin).status_code == 204
    assert client.simulate_get(f"{LDAP}/corp", headers=admin).status_code == 404
    renamed = client.simulate_get(f"{LDAP}/corporate", headers=admin).json
    assert renamed["port"] == 1389 and renamed["id"] == read["id"] and renamed["order"] == 0
    stored = stowage_app.stowage.security.password_realms["LdapRealm"].servers.get("corporate")
    # Kept sealed (a catalog copy does not reveal it), opened only for the bind.
    assert stored.auth_password != directory.admin_password
    assert stowage_app.stowage.unseal(stored.auth_password) == directory.admin_password

    assert client.simulate_delete(f"{LDAP}/corporate", headers=admin).status_code == 204
    assert client.simulate_delete(f"{LDAP}/corporate", headers=admin).status_code == 404
    assert client.simulate_get(LDAP, headers=admin).json == []


def test_duplicate_name_is_refused(stowage_app, directory):
    client, admin = stowage_app.client, stowage_app.admin
    assert client.simulate_post(LDAP, json=directory.server_settings("a"), headers=admin).status_code == 201
    assert client.simulate_post(LDAP, json=directory.server_settings("a"), headers=admin).status_code == 409
    assert client.simulate_post(LDAP, json=directory.server_settings("b"), headers=admin).status_code == 201
    answer = client.simulate_put(f"{LDAP}/b", json=directory.server_settings("a"), headers=admin)
    assert answer.status_code == 409
    assert [s["name"] for s in client.simulate_get(LDAP, headers=admin).json] == ["a", "b"]


def test_change_order(stowage_app, directory):
    client, admin = stowage_app.client, stowage_app.admin
    for name in ("one", "two", "three"):
        client.simulate_post(LDAP, json=directory.server_settings(name), headers=admin)
    assert client.simulate_post(f"{LDAP}/change-order", json=["three", "one"], headers=admin).status_code == 204
    listed = client.simulate_get(LDAP, headers=admin).json
    assert [(s["name"], s["order"]) for s in listed] == [("three", 0), ("one", 1), ("two", 2)]
    for bad in (["nope"], ["one", "one"], {"one": 1}, [1]):
        assert client.simulate_post(f"{LDAP}/change-order", json=bad, headers=admin).status_code == 400
    assert [s["name"] for s in client.simulate_get(LDAP, headers=admin).json] == ["three", "one", "two"]


@pytest.mark.parametrize("change, message", [
    ({"protocol": "http"}, "protocol must be one of ldap, ldaps"),
    ({"authScheme": "KERBEROS"}, "authScheme must be one of NONE, SIMPLE, DIGEST_MD5, CRAM_MD5"),
    ({"authScheme": "CRAM_MD5"}, "CRAM_MD5 is not supported"),
    ({"authScheme": "DIGEST_MD5"}, "authRealm is required"),
    ({"authPassword": None}, "authPassword is required with authScheme SIMPLE"),
    ({"groupType": "nested"}, "groupType must be one of static, dynamic"),
    ({"groupType": None}, "groupType is required when ldapGroupsAsRoles is true"),
    ({"groupMemberAttribute": ""}, "groupType static needs groupMemberAttribute"),
    ({"groupType": "dynamic"}, "groupType dynamic needs userMemberOfAttribute"),
    ({"groupMemberFormat": "uid=alice"}, "groupMemberFormat must contain ${username} or ${dn}"),
    ({"port": 0}, "port must be an integer from 1 to 65535"),
    ({"port": "389"}, "port must be an integer"),
    ({"port": True}, "port must be an integer"),
    ({"connectionTimeoutSeconds": 0}, "connectionTimeoutSeconds must be an integer from 1 to 3600"),
    ({"userSubtree": "yes"}, "userSubtree must be true or false"),
    ({"host": "ldap.example.com/evil"}, "host must be a host name"),
    ({"searchBase": "not a dn"}, "searchBase is not a valid DN"),
    ({"userBaseDn": "ou=people,"}, "userBaseDn is not a valid DN"),
    ({"userIdAttribute": "uid)(objectClass=*"}, "userIdAttribute is not an LDAP attribute"),
    ({"userLdapFilter": "(|(uid=a)"}, "userLdapFilter is not a valid LDAP filter"),
    ({"name": "../x"}, "name: letters"),
    ({"surprise": 1}, "unknown field(s): surprise"),
    ({"host": None, "port": None}, "missing required field(s): host, port"),
])
def test_invalid_settings_are_a_400_that_names_the_field(stowage_app, directory, change, message):
    body = {**directory.server_settings("bad"), **change}
    answer = stowage_app.client.simulate_post(LDAP, json=body, headers=stowage_app.admin)
    assert answer.status_code == 400 and message in answer.text, answer.text
    assert stowage_app.client.simulate_get(LDAP, headers=stowage_app.admin).json == []


def test_a_filter_without_parentheses_is_wrapped(stowage_app, directory):
    body = directory.server_settings("f", userLdapFilter="mail=*@stowage.test")
    assert stowage_app.client.simulate_post(LDAP, json=body, headers=stowage_app.admin).status_code == 201
    assert stowage_app.client.simulate_get(f"{LDAP}/f", headers=stowage_app.admin).json["userLdapFilter"] == \
        "(mail=*@stowage.test)"


def test_auth_scheme_none_keeps_no_credentials(stowage_app, directory):
    body = directory.server_settings("anon", authScheme="NONE")
    assert stowage_app.client.simulate_post(LDAP, json=body, headers=stowage_app.admin).status_code == 201
    read = stowage_app.client.simulate_get(f"{LDAP}/anon", headers=stowage_app.admin).json
    assert read["authScheme"] == "NONE" and read["authUsername"] == ""


def test_not_a_json_object_is_a_400(stowage_app):
    for body in ("[]", "nope", ""):
        answer = stowage_app.client.simulate_post(LDAP, body=body, headers={**stowage_app.admin,
                                                                            "Content-Type": "application/json"})
        assert answer.status_code == 400


def test_admin_only(stowage_app, directory):
    client = stowage_app.client
    client.simulate_post("/service/rest/v1/security/users", headers=stowage_app.admin, json={
        "userId": "dev", "password": "dev-pw", "roles": ["nx-deployer"]})
    client.simulate_post(LDAP, json=directory.server_settings("corp"), headers=stowage_app.admin)
    for method, path, body in (("GET", LDAP, None), ("POST", LDAP, directory.server_settings("x")),
                               ("GET", f"{LDAP}/corp", None), ("DELETE", f"{LDAP}/corp", None),
                               ("PUT", f"{LDAP}/corp", directory.server_settings("corp")),
                               ("POST", f"{LDAP}/change-order", ["corp"]),
                               ("GET", f"{REALMS}/available", None), ("GET", f"{REALMS}/active", None),
                               ("PUT", f"{REALMS}/active", ["NexusAuthenticatingRealm"])):
        assert client.simulate_request(method, path, json=body).status_code == 401
        assert client.simulate_request(method, path, json=body, headers=basic_auth("dev", "dev-pw")).status_code == 403
    assert [s["name"] for s in client.simulate_get(LDAP, headers=stowage_app.admin).json] == ["corp"]
    assert "LdapRealm" in client.simulate_get(f"{REALMS}/active", headers=stowage_app.admin).json


def test_realms_available_and_active(stowage_app):
    client, admin = stowage_app.client, stowage_app.admin
    available = client.simulate_get(f"{REALMS}/available", headers=admin).json
    ids = [r["id"] for r in available]
    assert {"NexusAuthenticatingRealm", "LdapRealm", "NpmToken", "DockerToken", "User-Token-Realm"} <= set(ids)
    assert all(set(r) == {"id", "name"} and r["name"] for r in available)
    assert client.simulate_get(f"{REALMS}/active", headers=admin).json == ids
    wanted = ["LdapRealm", "NexusAuthenticatingRealm", "NpmToken"]
    assert client.simulate_put(f"{REALMS}/active", json=wanted, headers=admin).status_code == 204
    assert client.simulate_get(f"{REALMS}/active", headers=admin).json == wanted


@pytest.mark.parametrize("body", [["NexusAuthenticatingRealm", "CrowdRealm"], ["NexusAuthenticatingRealm", 3],
                                  {"active": ["NexusAuthenticatingRealm"]}, "NexusAuthenticatingRealm"])
def test_unknown_realm_is_a_400_and_changes_nothing(stowage_app, body):
    client, admin = stowage_app.client, stowage_app.admin
    before = client.simulate_get(f"{REALMS}/active", headers=admin).json
    answer = client.simulate_put(f"{REALMS}/active", json=body, headers=admin)
    assert answer.status_code == 400
    assert client.simulate_get(f"{REALMS}/active", headers=admin).json == before


def test_an_admin_cannot_switch_off_the_realm_that_signs_them_in(stowage_app):
    client, admin = stowage_app.client, stowage_app.admin
    answer = client.simulate_put(f"{REALMS}/active", json=["LdapRealm"], headers=admin)
    assert answer.status_code == 400 and "NexusAuthenticatingRealm" in answer.text
    assert client.simulate_get(f"{REALMS}/active", headers=admin).status_code == 200


def test_local_realm_off_refuses_local_users(stowage_app):
    client, admin = stowage_app.client, stowage_app.admin
    client.simulate_post("/service/rest/v1/security/users", headers=admin, json={
        "userId": "other-admin", "password": "pw", "roles": ["nx-admin"], "source": "default"})
    # Realms are re-read at most every second in other processes; here the change applies at once.
    assert client.simulate_put(f"{REALMS}/active", json=["NexusAuthenticatingRealm"], headers=admin).status_code == 204
    assert client.simulate_get(LDAP, headers=basic_auth("other-admin", "pw")).status_code == 200
    stowage_app.stowage.catalog.put_document("security.settings", "realms", ["LdapRealm"])
    stowage_app.stowage.security.realms._cached = None
    assert client.simulate_get(LDAP, headers=admin).status_code == 401


def test_application_privileges_as_in_nexus(stowage_app, directory):
    client, admin = stowage_app.client, stowage_app.admin
    client.simulate_post(LDAP, json=directory.server_settings("corp"), headers=admin)
    client.simulate_post("/service/rest/v1/security/roles", headers=admin, json={
        "id": "auditors", "name": "auditors", "privileges": ["nx-ldap-read", "nx-settings-read"]})
    client.simulate_post("/service/rest/v1/security/users", headers=admin, json={
        "userId": "auditor", "password": "auditor-pw", "roles": ["auditors"]})
    auditor = basic_auth("auditor", "auditor-pw")
    assert [s["name"] for s in client.simulate_get(LDAP, headers=auditor).json] == ["corp"]
    assert client.simulate_get(f"{LDAP}/corp", headers=auditor).status_code == 200
    assert client.simulate_get(f"{REALMS}/active", headers=auditor).status_code == 200
    assert client.simulate_delete(f"{LDAP}/corp", headers=auditor).status_code == 403
    assert client.simulate_post(f"{LDAP}/change-order", json=["corp"], headers=auditor).status_code == 403
    assert client.simulate_put(f"{REALMS}/active", json=["NexusAuthenticatingRealm"], headers=auditor).status_code == 403


def test_a_body_not_declared_as_json_is_refused(stowage_app):
    for path, method in ((f"{LDAP}/change-order", "POST"), (f"{REALMS}/active", "PUT")):
        answer = stowage_app.client.simulate_request(method, path, body='["NexusAuthenticatingRealm"]',
                                                     headers={**stowage_app.admin, "Content-Type": "text/plain"})
        assert answer.status_code == 415
