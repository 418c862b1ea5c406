"""/service/rest/v1/security/privileges and /content-selectors, and what they grant on raw repositories."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from stowage.security import User
from stowage.testing.harness import basic_auth

V1 = "/service/rest/v1/security"
DEV = basic_auth("dev", "dev-pw")


@pytest.fixture
def ts(stowage_factory):
    ts = stowage_factory(repositories=[{"name": "raw-hosted", "format": "raw", "type": "hosted",
                                        "storage": {"writePolicy": "ALLOW"}}])
    ts.stowage.security.save_user(User(user_id="dev", roles=("devs",)), "dev-pw")
    ts.stowage.security.save_role({"id": "devs", "name": "devs", "privileges": [], "roles": []})
    for path in ("public/a.txt", "private/b.txt"):
        assert ts.client.simulate_put(f"/repository/raw-hosted/{path}", body=b"x", headers=ts.admin).status_code == 201
    ts.stowage.security.set_anonymous_settings(False)
    return ts


def grant(ts, *privileges):
    ts.stowage.security.save_role({"id": "devs", "name": "devs", "privileges": list(privileges), "roles": []})


def test_builtins_are_listed_read_only_and_refuse_changes(ts):
    listed = {p["name"]: p for p in ts.client.simulate_get(f"{V1}/privileges", headers=ts.admin).json}
    assert listed["nx-all"] == {"type": "wildcard", "name": "nx-all", "description": "All permissions",
                                "readOnly": True, "pattern": "nexus:*"}
    assert listed["nx-repository-view-raw-raw-hosted-read"]["readOnly"] is True
    assert listed["nx-selectors-read"]["type"] == "application"
    assert ts.client.simulate_get(f"{V1}/privileges/nx-all", headers=ts.admin).json["readOnly"] is True
    assert ts.client.simulate_delete(f"{V1}/privileges/nx-all", headers=ts.admin).status_code == 400
    body = {"name": "nx-all", "pattern": "nexus:nothing"}
    assert ts.client.simulate_put(f"{V1}/privileges/wildcard/nx-all", json=body, headers=ts.admin).status_code == 400
    assert ts.client.simulate_post(f"{V1}/privileges/wildcard", json=body, headers=ts.admin).status_code == 400
    assert ts.client.simulate_get(f"{V1}/privileges/nope", headers=ts.admin).status_code == 404


def test_typed_crud_and_validation(ts):
    post = lambda kind, body: ts.client.simulate_post(f"{V1}/privileges/{kind}", json=body, headers=ts.admin)
    created = post("repository-view", {"name": "raw-read", "description": "d", "format": "raw",
                                       "repository": "raw-hosted", "actions": ["read", "BROWSE"]})
    assert created.status_code == 201
    assert created.json == {"type": "repository-view", "name": "raw-read", "description": "d", "readOnly": False,
                            "format": "raw", "repository": "raw-hosted", "actions": ["BROWSE", "READ"]}
    assert post("repository-view", {"name": "raw-read", "format": "raw", "repository": "*",
                                    "actions": ["READ"]}).status_code == 400
    for body, fragment in (({"name": "x", "format": "raw", "repository": "*"}, "actions"),
                           ({"name": "x", "format": "raw", "repository": "*", "actions": ["FLY"]}, "actions must"),
                           ({"name": "x", "format": "cobol", "repository": "*", "actions": ["READ"]}, "cobol"),
                           ({"name": "bad name", "format": "raw", "repository": "*", "actions": ["READ"]}, "name")):
        answer = post("repository-view", body)
        assert answer.status_code == 400 and fragment in answer.text
    assert post("repository-view", {"name": "x", "format": "raw", "repository": "ghost",
                                    "actions": ["READ"]}).status_code == 404
    assert post("repository-content-selector", {"name": "x", "format": "raw", "repository": "*",
                                                "contentSelector": "ghost", "actions": ["READ"]}).status_code == 400
    assert post("application", {"name": "app", "domain": "audit", "actions": ["READ"]}).status_code == 201
    assert post("wildcard", {"name": "wild", "pattern": "nexus:repository-view:raw:*:read"}).status_code == 201

    update = {"description": "new", "format": "raw", "repository": "*", "actions": ["ALL"]}
    assert ts.client.simulate_put(f"{V1}/privileges/repository-view/raw-read", json=update,
                                  headers=ts.admin).status_code == 204
    assert ts.client.simulate_get(f"{V1}/privileges/raw-read", headers=ts.admin).json["actions"] == ["ALL"]
    assert ts.client.simulate_put(f"{V1}/privileges/wildcard/raw-read", json={"pattern": "x"},
                                  headers=ts.admin).status_code == 400  # the type cannot change
    grant(ts, "raw-read")
    assert ts.client.simulate_delete(f"{V1}/privileges/raw-read", headers=ts.admin).status_code == 400  # in use
    grant(ts)
    assert ts.client.simulate_delete(f"{V1}/privileges/raw-read", headers=ts.admin).status_code == 204
    assert ts.client.simulate_get(f"{V1}/privileges/raw-read", headers=ts.admin).status_code == 404


def test_selector_crud_and_invalid_expressions(ts):
    client = ts.client
    bad = client.simulate_post(f"{V1}/content-selectors", json={"name": "s", "expression": 'path =~ "("'},
                               headers=ts.admin)
    assert bad.status_code == 400 and "invalid regular expression" in bad.text
    assert client.simulate_post(f"{V1}/content-selectors", json={"name": "s", "expression": "path"},
                                headers=ts.admin).status_code == 400
    assert client.simulate_get(f"{V1}/content-selectors", headers=ts.admin).json == []
    good = {"name": "s", "description": "d", "expression": 'path =^ "/public/"'}
    assert client.simulate_post(f"{V1}/content-selectors", json=good, headers=ts.admin).status_code == 204
    assert client.simulate_post(f"{V1}/content-selectors", json=good, headers=ts.admin).status_code == 400
    assert client.simulate_get(f"{V1}/content-selectors/s", headers=ts.admin).json == {**good, "type": "csel"}
    assert client.simulate_put(f"{V1}/content-selectors/s", json={"expression": "path =="},
                               headers=ts.admin).status_code == 400
    assert client.simulate_put(f"{V1}/content-selectors/s", json={"description": "e"},
                               headers=ts.admin).status_code == 204
    assert client.simulate_get(f"{V1}/content-selectors/s", headers=ts.admin).json["expression"] == 'path =^ "/public/"'
    client.simulate_post(f"{V1}/privileges/repository-content-selector", headers=ts.admin, json={
        "name": "p", "format": "raw", "repository": "raw-hosted", "contentSelector": "s", "actions": ["READ"]})
    assert client.simulate_delete(f"{V1}/content-selectors/s", headers=ts.admin).status_code == 400
    client.simulate_delete(f"{V1}/privileges/p", headers=ts.admin)
    assert client.simulate_delete(f"{V1}/content-selectors/s", headers=ts.admin).status_code == 204
    assert client.simulate_get(f"{V1}/content-selectors/s", headers=ts.admin).status_code == 404


def test_non_admins_are_refused_unless_granted_the_application_privilege(ts):
    for path in ("/privileges", "/content-selectors"):
        assert ts.client.simulate_get(f"{V1}{path}").status_code == 401
        assert ts.client.simulate_get(f"{V1}{path}", headers=DEV).status_code == 403
    assert ts.client.simulate_post(f"{V1}/content-selectors", json={"name": "s", "expression": 'path == "/"'},
                                   headers=DEV).status_code == 403
    grant(ts, "nx-selectors-read")
    assert ts.client.simulate_get(f"{V1}/content-selectors", headers=DEV).status_code == 200
    assert ts.client.simulate_post(f"{V1}/content-selectors", json={"name": "s", "expression": 'path == "/"'},
                                   headers=DEV).status_code == 403


def test_wildcard_and_view_privileges_grant_repository_access(ts):
    url = "/repository/raw-hosted/public/a.txt"
    assert ts.client.simulate_get(url, headers=DEV).status_code == 403
    ts.client.simulate_post(f"{V1}/privileges/wildcard", headers=ts.admin,
                            json={"name": "wild", "pattern": "nexus:repository-view:raw:*:read"})
    grant(ts, "wild")
    assert ts.client.simulate_get(url, headers=DEV).status_code == 200
    assert ts.client.simulate_put(url, body=b"y", headers=DEV).status_code == 403


def test_content_selector_privilege_limits_reads_writes_deletes_and_listings(ts):
    client = ts.client
    client.simulate_post(f"{V1}/content-selectors", headers=ts.admin,
                         json={"name": "public", "expression": 'format == "raw" and path =^ "/public/"'})
    client.simulate_post(f"{V1}/privileges/repository-content-selector", headers=ts.admin, json={
        "name": "public-all", "format": "raw", "repository": "raw-hosted", "contentSelector": "public",
        "actions": ["ALL"]})
    grant(ts, "public-all")
    base = "/repository/raw-hosted"
    assert client.simulate_get(f"{base}/public/a.txt", headers=DEV).status_code == 200
    assert client.simulate_get(f"{base}/private/b.txt", headers=DEV).status_code == 404
    assert client.simulate_put(f"{base}/public/new.txt", body=b"n", headers=DEV).status_code == 201
    assert client.simulate_put(f"{base}/private/new.txt", body=b"n", headers=DEV).status_code == 403
    assert ts.stowage.catalog.get_asset("raw-hosted", "private/new.txt") is None
    assert client.simulate_delete(f"{base}/private/b.txt", headers=DEV).status_code == 403
    assert client.simulate_delete(f"{base}/public/new.txt", headers=DEV).status_code == 204

    paths = lambda answer: sorted(a["path"] for a in answer.json["items"])
    assets = client.simulate_get("/service/rest/v1/assets", params={"repository": "raw-hosted"}, headers=DEV)
    assert paths(assets) == ["public/a.txt"]
    assert paths(client.simulate_get("/service/rest/v1/search/assets", headers=DEV)) == ["public/a.txt"]
    assert paths(client.simulate_get("/service/rest/v1/search/assets", params={"repository": "raw-hosted"},
                                     headers=DEV)) == ["public/a.txt"]
    everything = client.simulate_get("/service/rest/v1/search/assets", headers=ts.admin)
    assert paths(everything) == ["private/b.txt", "public/a.txt"]
    hidden = [a for a in everything.json["items"] if a["path"] == "private/b.txt"][0]
    assert client.simulate_get(f"/service/rest/v1/assets/{hidden['id']}", headers=DEV).status_code == 404
    assert client.simulate_delete(f"/service/rest/v1/assets/{hidden['id']}", headers=DEV).status_code == 403


def test_changes_reach_another_process_within_a_second(ts, stowage_factory):
    other = stowage_factory(data_dir=ts.stowage.settings.data_path)  # a second worker on the same catalog
    url = "/repository/raw-hosted/public/a.txt"
    assert other.client.simulate_get(url, headers=DEV).status_code == 403
    grant(ts, "nx-repository-view-raw-raw-hosted-read")
    deadline = time.monotonic() + 3
    while other.client.simulate_get(url, headers=DEV).status_code != 200:
        assert time.monotonic() < deadline, "the grant never reached the other process"
        time.sleep(0.05)
    assert time.monotonic() < deadline


def test_browse_lists_only_what_the_selector_matches(ts):
    ts.client.simulate_post(f"{V1}/content-selectors", headers=ts.admin,
                            json={"name": "public", "expression": 'path =^ "/public/"'})
    ts.client.simulate_post(f"{V1}/privileges/repository-content-selector", headers=ts.admin, json={
        "name": "public-read", "format": "raw", "repository": "raw-hosted", "contentSelector": "public",
        "actions": ["BROWSE", "READ"]})
    grant(ts, "public-read")
    root = ts.client.simulate_get("/service/rest/repository/browse/raw-hosted/", headers=DEV)
    assert root.status_code == 200 and "public/" in root.text and "private" not in root.text
    folder = ts.client.simulate_get("/service/rest/repository/browse/raw-hosted/public/", headers=DEV)
    assert "a.txt" in folder.text
    admin_root = ts.client.simulate_get("/service/rest/repository/browse/raw-hosted/", headers=ts.admin)
    assert "private/" in admin_root.text


def test_a_wildcard_privilege_for_everything_makes_an_administrator(ts):
    assert ts.client.simulate_get(f"{V1}/users", headers=DEV).status_code == 403
    ts.client.simulate_post(f"{V1}/privileges/wildcard", headers=ts.admin, json={"name": "all", "pattern": "nexus:*"})
    grant(ts, "all")
    assert ts.client.simulate_get(f"{V1}/users", headers=DEV).status_code == 200
    ts.client.simulate_put(f"{V1}/privileges/wildcard/all", headers=ts.admin, json={"pattern": "nexus:users:read"})
    assert ts.client.simulate_get(f"{V1}/users", headers=DEV).status_code == 403


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                    max_leaves=8)
FIELDS = st.fixed_dictionaries({}, optional={
    key: JSON | st.sampled_from(["raw", "*", "raw-hosted", "READ", 'path =^ "/"', "public"])
    for key in ("name", "description", "format", "repository", "actions", "contentSelector", "domain",
                "pattern", "expression")})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["application", "repository-admin", "repository-view", "repository-content-selector",
                             "wildcard"]), body=FIELDS | JSON)
def test_hostile_bodies_are_4xx_never_5xx(ts, kind, body):
    security = ts.stowage.security
    if security.get_selector("s1") is None:
        security.save_selector({"name": "s1", "description": "", "expression": 'path =^ "/public/"'})
    if security.get_privilege(f"p-{kind}") is None:  # an existing one of this type, so PUT reaches validation
        security.save_privilege({"type": kind, "name": f"p-{kind}", "description": "", "format": "raw",
                                 "repository": "*", "contentSelector": "s1", "domain": "users",
                                 "pattern": "nexus:users:read", "actions": ["READ"]})
    for method, path in (("POST", f"{V1}/privileges/{kind}"), ("PUT", f"{V1}/privileges/{kind}/p-{kind}"),
                         ("POST", f"{V1}/content-selectors"), ("PUT", f"{V1}/content-selectors/s1")):
        answer = ts.client.simulate_request(method, path, json=body, headers=ts.admin)
        assert answer.status_code < 500, (method, path, body, answer.text)
