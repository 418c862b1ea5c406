"""Directory users and tokens: a user token for an ``LdapRealm`` user, ``protectContent`` refusing the
directory password, and the token ending when the directory no longer knows the user."""

from __future__ import annotations

from stowage.settings import SecuritySettings
from stowage.testing.harness import basic_auth
from stowage.testing.slapd import BASE_DN, map_group, use_directory

FILE = "/repository/raw-hosted/docs/token.txt"
API = "/service/rest/v1/security"


def test_directory_user_token_and_protect_content(stowage_factory, slapd):
    app = stowage_factory(security=SecuritySettings(ldap_auth_cache_seconds=0), anonymous_access=False)
    app.create_repository(name="raw-hosted", format="raw", type="hosted", storage={"writePolicy": "ALLOW"})
    map_group(app, "developers", ["nx-repository-view-raw-raw-hosted-*"])
    use_directory(app, slapd)
    settings = {"enabled": True, "protectContent": True, "expirationEnabled": False, "expirationDays": 30}
    assert app.client.simulate_put(f"{API}/user-tokens", json=settings, headers=app.admin).status_code == 200

    alice = basic_auth("alice", "alice-ldap-pw")
    assert app.client.simulate_post(f"{API}/users/alice/NexusAuthenticatingRealm/user-token",
                                    headers=alice).status_code == 404  # alice is not a local user
    created = app.client.simulate_post(f"{API}/users/alice/LdapRealm/user-token", headers=alice)
    assert created.status_code == 201, created.text
    pair = created.json
    assert pair["realm"] == "LdapRealm" and pair["userId"] == "alice"
    token = basic_auth(pair["nameCode"], pair["passCode"])

    refused = app.client.simulate_put(FILE, body=b"x", headers=alice)
    assert refused.status_code == 401 and "user token" in refused.text
    assert app.client.simulate_put(FILE, body=b"x", headers=token).status_code == 201
    listed = app.client.simulate_get(f"{API}/users/alice/tokens", headers=app.admin)
    assert [t["kind"] for t in listed.json] == ["user-token"]

    # a realm that is not active authenticates nobody
    realms = f"{API}/realms/active"
    active = app.client.simulate_get(realms, headers=app.admin).json
    without = [r for r in active if r != "User-Token-Realm"]
    assert app.client.simulate_put(realms, json=without, headers=app.admin).status_code == 204
    assert app.client.simulate_get(FILE, headers=token).status_code == 401
    assert app.client.simulate_put(realms, json=active, headers=app.admin).status_code == 204
    assert app.client.simulate_get(FILE, headers=token).status_code == 200

    # gone from the directory: the token stops working (it is bound to the directory's answer)
    slapd.ldapmodify(f"dn: uid=alice,ou=people,{BASE_DN}\nchangetype: delete\n")
    assert app.client.simulate_get(FILE, headers=token).status_code == 401
