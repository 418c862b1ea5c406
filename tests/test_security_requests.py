"""CSRF rules, the same answer for unauthenticated callers, and docker ``_catalog`` permissions
(issue #10, items 2, 6, 11). The attacks in a real browser are in test_security_browser.py."""

from __future__ import annotations

import io
import json

import pytest

from stowage.http.csrf import CSRF_TOKEN
from stowage.models import Component
from stowage.security import User
from stowage.testing.harness import basic_auth

V1 = "/service/rest/v1"
NEW_ADMIN = {"userId": "intruder", "firstName": "I", "lastName": "N", "emailAddress": "i@example.org",
             "password": "intruder-pw", "status": "active", "roles": ["nx-admin"]}
#: falcon's test client sends ``Host: falconframework.org`` over http.
SELF = "http://falconframework.org"


@pytest.fixture
def ts(stowage_app):
    stowage_app.create_repository(name="raw", format="raw", type="hosted")
    stowage_app.create_repository(name="docker-a", format="docker", type="hosted")
    stowage_app.create_repository(name="docker-b", format="docker", type="hosted")
    return stowage_app


def push_manifest(ts, repository: str, image: str, tag: str = "1") -> None:
    repo = ts.stowage.repository(repository)
    body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                                  "digest": "sha256:" + "0" * 64}, "layers": []}).encode()
    blob = repo.blob_store.store(io.BytesIO(body), length=len(body))
    repo.record(f"v2/{image}/manifests/{tag}", blob, content_type="application/vnd.oci.image.manifest.v1+json",
                component=Component(repository=repository, format="docker", name=image, version=tag))


def intruder_exists(ts) -> bool:
    return ts.stowage.security.get_user("intruder") is not None


# -- CSRF ------------------------------------------------------------------------------------------------
def test_json_endpoints_refuse_bodies_a_form_can_send(ts):
    for content_type, body in (("application/x-www-form-urlencoded", "userId=intruder&roles=nx-admin"),
                               ("text/plain", json.dumps(NEW_ADMIN)), ("multipart/form-data; boundary=x", "--x--"),
                               (None, json.dumps(NEW_ADMIN))):
        headers = dict(ts.admin)
        if content_type:
            headers["Content-Type"] = content_type
        answer = ts.client.simulate_post(f"{V1}/security/users", body=body, headers=headers)
        assert answer.status_code == 415, (content_type, answer.text)
        assert "application/json" in answer.text
    assert not intruder_exists(ts)
    ok = ts.client.simulate_post(f"{V1}/security/users", body=json.dumps(NEW_ADMIN),
                                 headers={**ts.admin, "Content-Type": "application/json; charset=utf-8"})
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("browser_headers", [
    {"Origin": "http://127.0.0.1:9"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site", "Origin": SELF},
    {"Cookie": "session=abc"},
    {"Cookie": f"{CSRF_TOKEN}=a-token-of-enough-length"},
    {"Cookie": f"{CSRF_TOKEN}=a-token-of-enough-length", CSRF_TOKEN: "another-token-of-enough-length"},
    {"Origin": "http://127.0.0.1:9", CSRF_TOKEN: "a-token-without-its-cookie"},
])
def test_browser_writes_without_a_valid_token_are_refused_everywhere(ts, browser_headers):
    client, admin = ts.client, ts.admin
    refused = [
        client.simulate_post(f"{V1}/security/users", json=NEW_ADMIN, headers={**admin, **browser_headers}),
        client.simulate_put("/repository/raw/evil.txt", body=b"x", headers={**admin, **browser_headers}),
        client.simulate_delete(f"{V1}/repositories/raw", headers={**admin, **browser_headers}),
        client.simulate_post(f"{V1}/components", params={"repository": "raw"}, headers={**admin, **browser_headers},
                             body=b"--b\r\nContent-Disposition: form-data; name=\"raw.asset1\"; filename=\"f\"\r\n\r\n"
                                  b"x\r\n--b--\r\n", content_type="multipart/form-data; boundary=b"),
        client.simulate_post("/v2/docker-a/evil/blobs/uploads/", headers={**admin, **browser_headers}),
    ]
    for answer in refused:
        assert answer.status_code == 403, answer.text
        assert CSRF_TOKEN in answer.text and "cross-site" in answer.text
    assert not intruder_exists(ts)
    assert ts.stowage.catalog.get_asset("raw", "evil.txt") is None
    assert ts.stowage.catalog.get_repository("raw") is not None


def test_clients_same_origin_pages_and_pages_with_the_token_are_let_through(ts):
    client, admin = ts.client, ts.admin
    token = "a-token-of-enough-length"
    for i, headers in enumerate([
        {},  # pip, twine, npm, docker, dnf, curl: neither cookies nor Origin
        {"Origin": SELF, "Sec-Fetch-Site": "same-origin"},  # a fetch() from our own pages, no cookies
        {"Cookie": f"{CSRF_TOKEN}={token}; other=1", CSRF_TOKEN: token, "Origin": SELF},
        {"Cookie": f"{CSRF_TOKEN}={token}", CSRF_TOKEN: token, "Sec-Fetch-Site": "same-site"},
    ]):
        put = client.simulate_put(f"/repository/raw/ok{i}.txt", body=b"x", headers={**admin, **headers})
        assert put.status_code == 201, (headers, put.text)
    # Reads are never refused (a cross-site <img> or link can only read what the caller may read anyway).
    got = client.simulate_get("/repository/raw/ok0.txt", headers={"Origin": "http://127.0.0.1:9",
                                                                   "Sec-Fetch-Site": "cross-site"})
    assert got.status_code == 200


def test_ui_pages_hand_out_the_token_cookie(ts):
    page = ts.client.simulate_get("/")
    cookie = page.cookies[CSRF_TOKEN]
    assert len(cookie.value) >= 32 and cookie.same_site == "Strict" and not cookie.http_only
    again = ts.client.simulate_get("/", headers={"Cookie": f"{CSRF_TOKEN}={cookie.value}"})
    assert CSRF_TOKEN not in again.cookies  # kept, not rotated on every page


# -- unauthenticated callers learn nothing with anonymous access off ---------------------------------------
def test_unauthenticated_callers_get_one_answer_for_existing_and_missing_things(ts):
    client = ts.client
    assert client.simulate_put("/repository/raw/here.txt", body=b"x", headers=ts.admin).status_code == 201
    push_manifest(ts, "docker-a", "app")
    asset_id = client.simulate_get(f"{V1}/assets", params={"repository": "raw"}, headers=ts.admin).json["items"][0]["id"]
    component_id = client.simulate_get(f"{V1}/components", params={"repository": "docker-a"},
                                       headers=ts.admin).json["items"][0]["id"]
    ts.stowage.security.set_anonymous_settings(False)
    pairs = [
        ("/repository/raw/here.txt", "/repository/missing/here.txt"),
        ("/repository/raw/here.txt", "/repository/raw/missing.txt"),
        (f"{V1}/repositories/raw", f"{V1}/repositories/missing"),
        (f"{V1}/components?repository=raw", f"{V1}/components?repository=missing"),
        (f"{V1}/components/{component_id}", f"{V1}/components/{component_id[:-2]}xx"),
        (f"{V1}/assets/{asset_id}", f"{V1}/assets/{asset_id[:-2]}xx"),
        (f"{V1}/search?repository=raw", f"{V1}/search?repository=missing"),
        ("/service/rest/repository/browse/raw/", "/service/rest/repository/browse/missing/"),
        ("/v2/docker-a/app/tags/list", "/v2/missing/app/tags/list"),
        ("/v2/docker-a/app/tags/list", "/v2/docker-a/nothing/tags/list"),
    ]
    for existing, missing in pairs + [("/repository/docker-a/v2/app/tags/list", "/repository/missing/v2/app/tags/list")]:
        path, _, query = existing.partition("?")
        first = client.simulate_get(path, query_string=query)
        path, _, query = missing.partition("?")
        second = client.simulate_get(path, query_string=query)
        assert first.status_code == second.status_code == 401, (existing, first.status_code, missing,
                                                                 second.status_code)
        if (existing, missing) not in pairs:
            continue  # a missing repository has no format: a docker one challenges Bearer, a missing one Basic
        # Identical but for the names the caller sent itself (a Docker challenge's scope repeats them).
        challenge = second.headers["www-authenticate"]
        for mine, theirs in zip(missing.split("/"), existing.split("/")):
            challenge = challenge.replace(mine, theirs)
        assert first.headers["www-authenticate"] == challenge, (existing, missing)
        assert first.text == second.text, (existing, missing)
    # Health checks stay open for load balancers.
    assert client.simulate_get(f"{V1}/status").status_code == 200
    # With credentials, a missing thing is a 404 again.
    assert client.simulate_get("/repository/missing/x", headers=ts.admin).status_code == 404


# -- docker _catalog and tags follow read permission -----------------------------------------------------------
def test_docker_catalog_and_tags_follow_read_permission_on_every_route(ts):
    client = ts.client
    push_manifest(ts, "docker-a", "alpha")
    push_manifest(ts, "docker-b", "beta")
    security = ts.stowage.security
    security.save_role({"id": "raw-only", "name": "raw-only", "description": "", "roles": [],
                        "privileges": ["nx-repository-view-raw-*-*"]})
    security.save_role({"id": "a-reader", "name": "a-reader", "description": "", "roles": [],
                        "privileges": ["nx-repository-view-docker-docker-a-browse"]})
    security.save_user(User(user_id="rawdev", roles=("raw-only",)), "rawdev-pw")
    security.save_user(User(user_id="areader", roles=("a-reader",)), "areader-pw")
    rawdev, areader = basic_auth("rawdev", "rawdev-pw"), basic_auth("areader", "areader-pw")
    port = 18443  # a repository's own port: the server stamps it on requests it accepts there
    ts.stowage.extension("port-map", dict)[port] = "docker-b"
    on_port = {"stowage.listener_port": port}

    def catalog(path, headers=None, extras=None):
        return client.simulate_get(path, headers=headers or {}, extras=extras)

    # Admin sees everything; anonymous (anonymous access on, nx-anonymous reads all) too.
    assert catalog("/v2/_catalog", ts.admin).json["repositories"] == ["docker-a/alpha", "docker-b/beta"]
    # A user without docker privileges sees no image name on any route, and no tags.
    assert catalog("/v2/_catalog", rawdev).json["repositories"] == []
    for path, extras in (("/repository/docker-a/v2/_catalog", None), ("/v2/docker-a/_catalog", None),
                         ("/v2/_catalog", on_port), ("/v2/docker-a/alpha/tags/list", None),
                         ("/repository/docker-a/v2/alpha/tags/list", None), ("/v2/beta/tags/list", on_port)):
        denied = catalog(path, rawdev, extras)
        assert denied.status_code == 403, (path, denied.text)
        assert "alpha" not in denied.text and "beta" not in denied.text
    # Browse on one repository shows that repository's names only.
    assert catalog("/v2/_catalog", areader).json["repositories"] == ["docker-a/alpha"]
    assert catalog("/repository/docker-a/v2/_catalog", areader).json["repositories"] == ["alpha"]
    assert catalog("/v2/_catalog", areader, on_port).status_code == 403
    # Anonymous with anonymous access off: 401 with a challenge everywhere.
    ts.stowage.security.set_anonymous_settings(False)
    for path, extras in (("/v2/_catalog", None), ("/repository/docker-a/v2/_catalog", None),
                         ("/v2/docker-a/_catalog", None), ("/v2/_catalog", on_port)):
        answer = catalog(path, extras=extras)
        assert answer.status_code == 401 and answer.headers["www-authenticate"], (path, answer.text)
        assert "alpha" not in answer.text and "beta" not in answer.text
