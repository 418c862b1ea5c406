"""Signing in through a real directory (Debian's slapd, started by the ``slapd`` fixture)."""

from __future__ import annotations

import logging
import time

import pytest

from stowage.ldap.realm import LDAP_REALM
from stowage.settings import SecuritySettings
from stowage.testing.harness import basic_auth
from stowage.testing.slapd import BASE_DN, use_directory

REALMS = "/service/rest/v1/security/realms/active"
FILE = "/repository/raw-hosted/docs/readme.txt"


@pytest.fixture
def app_factory(stowage_factory, slapd):
    """An app with a raw repository no anonymous user may write, a ``developers`` role that may, and the
    directory configured."""

    def build(cache_seconds: float = 300.0, **server):
        test_stowage = stowage_factory(security=SecuritySettings(ldap_auth_cache_seconds=cache_seconds),
                                       anonymous_access=False)
        test_stowage.create_repository(name="raw-hosted", format="raw", type="hosted",
                                       storage={"writePolicy": "ALLOW"})
        answer = test_stowage.client.simulate_post("/service/rest/v1/security/roles", headers=test_stowage.admin,
                                                   json={"id": "developers", "name": "developers",
                                                         "privileges": ["nx-repository-view-raw-raw-hosted-*"]})
        assert answer.status_code == 200, answer.text
        use_directory(test_stowage, slapd, **server)
        return test_stowage

    return build


class ManualClock:
    """The LDAP sign-in cache's clock, moved by the test: what is cached, and when it expires, no longer
    depends on how long the machine takes between two requests."""

    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def manual_cache_clock(test_stowage) -> ManualClock:
    clock = ManualClock()
    test_stowage.stowage.security.password_realms[LDAP_REALM]._clock = clock
    return clock


def put(test_stowage, user, password, body=b"hello"):
    return test_stowage.client.simulate_put(FILE, body=body, headers=basic_auth(user, password))


def get(test_stowage, user, password):
    return test_stowage.client.simulate_get(FILE, headers=basic_auth(user, password))


def test_a_directory_user_signs_in_and_their_group_maps_to_a_role(app_factory):
    app = app_factory()
    assert put(app, "alice", "alice-ldap-pw").status_code == 201
    assert get(app, "alice", "alice-ldap-pw").text == "hello"
    assert put(app, "alice", "wrong").status_code == 401
    assert put(app, "alice", "").status_code == 401  # never an unauthenticated bind
    # bob is in "readers", which is no Stowage role: signed in, but granted nothing.
    assert put(app, "bob", "bob-ldap-pw").status_code == 403
    assert get(app, "bob", "bob-ldap-pw").status_code == 403
    assert put(app, "nobody", "alice-ldap-pw").status_code == 401
    user = app.stowage.security.check_password("alice", "alice-ldap-pw")
    assert user.source == "LDAP" and user.roles == ("developers",) and user.email_address == "alice@stowage.test"
    assert user.first_name == "Alice Example" and user.password_hash == ""


def test_dynamic_groups_read_the_users_member_of_attribute(app_factory):
    app = app_factory(groupType="dynamic", userMemberOfAttribute="memberOf", groupObjectClass="",
                      groupMemberAttribute="", groupMemberFormat="")
    assert put(app, "alice", "alice-ldap-pw").status_code == 201
    assert app.stowage.security.check_password("bob", "bob-ldap-pw").roles == ("readers",)


def test_member_format_with_dn_and_subtree_search(app_factory):
    app = app_factory(groupMemberFormat="${dn}", userBaseDn="", userSubtree=True, groupBaseDn="",
                      groupSubtree=True)
    assert put(app, "alice", "alice-ldap-pw").status_code == 201


def test_groups_are_ignored_unless_mapped_as_roles(app_factory):
    app = app_factory(ldapGroupsAsRoles=False)
    assert put(app, "alice", "alice-ldap-pw").status_code == 403


def test_user_filter_limits_who_may_sign_in(app_factory):
    app = app_factory(userLdapFilter="(!(uid=alice))")
    assert put(app, "alice", "alice-ldap-pw").status_code == 401
    assert app.stowage.security.check_password("bob", "bob-ldap-pw") is not None


def test_password_attribute_compare(app_factory):
    app = app_factory(userPasswordAttribute="userPassword")
    assert put(app, "alice", "alice-ldap-pw").status_code == 201
    assert put(app, "alice", "alice-ldap-pw-wrong").status_code == 401


@pytest.mark.parametrize("user_id", ["*", "alice)(uid=*", "al*", "alice\\", "(uid=alice)", "alice\x00"])
def test_filter_injection_in_the_user_name_signs_nobody_in(app_factory, user_id):
    app = app_factory()
    assert put(app, user_id, "alice-ldap-pw").status_code == 401


def test_anonymous_service_bind(app_factory):
    app = app_factory(authScheme="NONE")  # slapd allows anonymous reads by default
    assert put(app, "alice", "alice-ldap-pw").status_code == 201


def test_a_wrong_service_password_is_a_logged_401(app_factory, slapd, caplog):
    app = app_factory()
    body = {**slapd.server_settings(), "authPassword": "not-the-admin-password"}
    app.client.simulate_put("/service/rest/v1/security/ldap/test-directory", json=body, headers=app.admin)
    with caplog.at_level(logging.WARNING, logger="stowage.ldap.realm"):
        assert put(app, "alice", "alice-ldap-pw").status_code == 401
    assert "service bind" in caplog.text and "invalidCredentials" in caplog.text


def test_servers_are_tried_in_order(app_factory, slapd):
    app = app_factory()
    down = {**slapd.server_settings("down"), "port": slapd.port + 1 if slapd.port < 65535 else 1}
    client = app.client
    assert client.simulate_post("/service/rest/v1/security/ldap", json=down, headers=app.admin).status_code == 201
    assert client.simulate_post("/service/rest/v1/security/ldap/change-order", json=["down", "test-directory"],
                                headers=app.admin).status_code == 204
    # The first server refuses connections; the second signs alice in.
    assert put(app, "alice", "alice-ldap-pw").status_code == 201


def test_the_cache_spares_binds_and_expires(app_factory, slapd):
    app = app_factory(cache_seconds=1.5)
    clock = manual_cache_clock(app)
    assert put(app, "alice", "alice-ldap-pw").status_code == 201
    slapd.set_password("alice", "alice-new-pw")
    # Cached: the old password still works, the new one is asked of the directory.
    clock.now += 1.4
    assert get(app, "alice", "alice-ldap-pw").status_code == 200
    assert get(app, "alice", "alice-new-pw").status_code == 200
    clock.now += 0.2  # 1.6 s after the first sign-in
    assert get(app, "alice", "alice-ldap-pw").status_code == 401  # the change took effect at expiry
    assert get(app, "alice", "alice-new-pw").status_code == 200


def test_directory_down(app_factory, slapd, caplog):
    app = app_factory(cache_seconds=2)
    clock = manual_cache_clock(app)
    assert get(app, "bob", "bob-ldap-pw").status_code == 403  # cached sign-in (bob has no role)
    slapd.stop()
    with caplog.at_level(logging.WARNING, logger="stowage.ldap.realm"):
        assert get(app, "alice", "alice-ldap-pw").status_code == 401  # not cached: refused, not a 500
    assert "LDAP sign-in of 'alice'" in caplog.text and "test-directory" in caplog.text
    assert get(app, "bob", "bob-ldap-pw").status_code == 403  # still signed in from the cache
    assert get(app, "admin", app.admin_password).status_code == 404  # local users are unaffected
    clock.now += 2.1
    assert get(app, "bob", "bob-ldap-pw").status_code == 401  # the cache expired
    slapd.start()
    assert put(app, "alice", "alice-ldap-pw").status_code == 201


def test_a_failing_server_is_skipped_after_max_incidents(app_factory, slapd):
    app = app_factory(maxIncidentsCount=1, connectionRetryDelaySeconds=60, connectionTimeoutSeconds=1)
    slapd.stop()
    for _ in range(2):
        assert put(app, "alice", "alice-ldap-pw").status_code == 401
    slapd.start()
    # skipped: slapd runs again, so an attempted connection would have signed alice in (201)
    assert put(app, "alice", "alice-ldap-pw").status_code == 401
    # Saving the server's settings clears the incidents in this process.
    app.client.simulate_put("/service/rest/v1/security/ldap/test-directory",
                            json=slapd.server_settings(), headers=app.admin)
    assert put(app, "alice", "alice-ldap-pw").status_code == 201


def test_disabling_the_ldap_realm_refuses_directory_users_at_once(app_factory):
    app = app_factory()
    assert put(app, "alice", "alice-ldap-pw").status_code == 201  # now cached
    assert app.client.simulate_put(REALMS, json=["NexusAuthenticatingRealm"], headers=app.admin).status_code == 204
    assert get(app, "alice", "alice-ldap-pw").status_code == 401
    assert get(app, "admin", app.admin_password).status_code == 200
    app.client.simulate_put(REALMS, json=["NexusAuthenticatingRealm", "LdapRealm"], headers=app.admin)
    assert get(app, "alice", "alice-ldap-pw").status_code == 200


def test_disabling_the_ldap_realm_reaches_other_processes_within_a_second(app_factory, stowage_factory):
    first = app_factory()
    second = stowage_factory(data_dir=first.stowage.settings.data_dir, anonymous_access=False)
    assert put(first, "alice", "alice-ldap-pw").status_code == 201
    assert get(second, "alice", "alice-ldap-pw").status_code == 200
    first.client.simulate_put(REALMS, json=["NexusAuthenticatingRealm"], headers=first.admin)
    time.sleep(1.1)
    assert get(second, "alice", "alice-ldap-pw").status_code == 401


def test_realm_order_decides_between_a_local_and_a_directory_user_of_one_name(app_factory):
    app = app_factory()
    app.client.simulate_post("/service/rest/v1/security/users", headers=app.admin, json={
        "userId": "alice", "password": "alice-local-pw", "roles": ["nx-anonymous"]})
    # Both passwords work (each realm knows its own); the active order says who answers first.
    assert app.stowage.security.check_password("alice", "alice-local-pw").source == "default"
    assert app.stowage.security.check_password("alice", "alice-ldap-pw").source == "LDAP"
    app.client.simulate_put(REALMS, json=["NexusAuthenticatingRealm"], headers=app.admin)
    assert app.stowage.security.check_password("alice", "alice-ldap-pw") is None


def test_deleting_the_server_ends_cached_sign_ins(app_factory):
    app = app_factory()
    assert put(app, "alice", "alice-ldap-pw").status_code == 201
    app.client.simulate_delete("/service/rest/v1/security/ldap/test-directory", headers=app.admin)
    assert get(app, "alice", "alice-ldap-pw").status_code == 401


def test_base_dn_constant_matches_the_fixture(slapd):
    assert slapd.base_dn == BASE_DN and slapd.url.startswith("ldap://127.0.0.1:")


def test_the_security_table_of_the_configuration_file(tmp_path):
    from stowage.errors import ConfigurationError
    from stowage.serialization import make_converter
    from stowage.settings import load_config_file

    path = tmp_path / "stowage.toml"
    path.write_text("[security]\nldapAuthCacheSeconds = 30\n")
    assert load_config_file(path, make_converter()).server.security.ldap_auth_cache_seconds == 30
    assert load_config_file(None, make_converter()).server.security.ldap_auth_cache_seconds == 300
    for text, named in (("[security]\nldapAuthCache = 30\n", "ldapAuthCache"),
                        ("[security]\nldapAuthCacheSeconds = -1\n", "ldapAuthCacheSeconds")):
        path.write_text(text)
        with pytest.raises(ConfigurationError, match=named):
            load_config_file(path, make_converter())


def test_changing_the_server_on_another_node_ends_cached_sign_ins(app_factory, stowage_factory, slapd):
    first = app_factory()
    second = stowage_factory(data_dir=first.stowage.settings.data_dir, anonymous_access=False)
    assert put(first, "alice", "alice-ldap-pw").status_code == 201  # cached by the first app
    answer = second.client.simulate_put("/service/rest/v1/security/ldap/test-directory", headers=second.admin,
                                        json=slapd.server_settings(ldapGroupsAsRoles=False))
    assert answer.status_code == 204
    assert put(first, "alice", "alice-ldap-pw").status_code == 403  # asked again: no groups, no role


def test_a_directory_user_cannot_change_the_password_of_a_local_namesake(app_factory):
    app = app_factory()
    app.client.simulate_post("/service/rest/v1/security/users", headers=app.admin, json={
        "userId": "alice", "password": "alice-local-pw", "roles": []})
    url = "/service/rest/v1/security/users/alice/change-password"
    answer = app.client.simulate_put(url, body="taken-over", headers={**basic_auth("alice", "alice-ldap-pw"),
                                                                       "Content-Type": "text/plain"})
    assert answer.status_code == 403
    assert app.stowage.security.check_local_password("alice", "alice-local-pw") is not None
    # The local alice may still change her own.
    answer = app.client.simulate_put(url, body="alice-new-pw", headers={**basic_auth("alice", "alice-local-pw"),
                                                                         "Content-Type": "text/plain"})
    assert answer.status_code == 204


def test_the_web_ui_signs_a_directory_user_in(app_factory):
    app = app_factory()
    login = app.client.simulate_get("/login", headers=basic_auth("alice", "alice-ldap-pw"))
    assert login.status_code == 303
    page = app.client.simulate_get("/", headers=basic_auth("alice", "alice-ldap-pw"))
    assert "Signed in as <b>alice</b>" in page.text and "raw-hosted" in page.text
    assert app.client.simulate_get("/login", headers=basic_auth("alice", "nope")).status_code == 401


def test_a_directory_that_accepts_but_never_answers_is_a_prompt_401(app_factory, slapd, caplog):
    import socket

    app = app_factory()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # connections complete (backlog) but nothing is ever read or written
    try:
        app.client.simulate_put("/service/rest/v1/security/ldap/test-directory", headers=app.admin,
                                json=slapd.server_settings(port=silent.getsockname()[1], connectionTimeoutSeconds=1))
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="stowage.ldap.realm"):
            assert put(app, "alice", "alice-ldap-pw").status_code == 401
        assert time.monotonic() - started < 5
        assert "LDAP sign-in of 'alice'" in caplog.text
    finally:
        silent.close()


def test_the_audit_trail_shows_ldap_realm_changes_and_directory_sign_ins(app_factory, slapd):
    app = app_factory()
    app.client.simulate_put(REALMS, json=["NexusAuthenticatingRealm", "LdapRealm"], headers=app.admin)
    app.client.simulate_post("/service/rest/v1/security/ldap/change-order", json=["test-directory"],
                             headers=app.admin)
    assert put(app, "alice", "alice-ldap-pw").status_code == 201
    assert put(app, "alice", "wrong").status_code == 401
    items = app.client.simulate_get("/service/rest/v1/audit", headers=app.admin).json["items"]
    seen = {(e["user"], e["action"], e["result"]) for e in items}
    assert ("admin", "ldap.create", "success") in seen
    assert ("admin", "realm.update", "success") in seen
    assert ("admin", "ldap.change-order", "success") in seen
    assert any(e["user"] == "alice" and e["action"] == "signin" and e["result"] == "success" for e in items)
    assert any(e["action"] == "signin" and e["result"] != "success" and "alice" in str(e) for e in items)
    assert any(e["user"] == "alice" and e["action"] == "content.upload" for e in items)
