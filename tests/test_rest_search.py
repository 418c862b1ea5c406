"""/service/rest/v1/search*, against a live server: filters, permissions, sort, paging, download."""

import io

import pytest
import urllib3

from stowage.models import Component
from stowage.testing.harness import basic_auth

V1 = "/service/rest/v1"


@pytest.fixture
def server(stowage_factory, live_server_factory):
    ts = stowage_factory()
    for name in ("hosted-a", "hosted-b", "private"):
        ts.create_repository(name=name, format="raw", type="hosted")
    ts.create_repository(name="group", format="raw", type="group", group={"memberNames": ["hosted-a", "hosted-b"]})
    stowage = ts.stowage
    # The admin may read everything; "reader" may read only the hosted-* repositories.
    stowage.security.save_role({"id": "hosted-reader", "name": "hosted-reader", "description": "",
                                "privileges": ["nx-repository-view-raw-hosted-*-read",
                                               "nx-repository-view-raw-group-read"], "roles": []})
    from stowage.security import User
    stowage.security.save_user(User(user_id="reader", roles=("hosted-reader",)), "reader-pw")
    stowage.security.set_anonymous_settings(False)
    for repo, versions in (("hosted-a", ["1.0", "1.1", "2.0"]), ("hosted-b", ["3.0"]), ("private", ["9.9"])):
        repository = stowage.repository(repo)
        for version in versions:
            body = f"{repo}-{version}".encode()
            repository.store(f"tool/{version}/tool-{version}.tgz", io.BytesIO(body), length=len(body),
                             component=Component(repository=repo, format="raw", name="tool", version=version,
                                                 group="cwiq"))
    return ts, live_server_factory(ts)


def get(server, path, auth=None, **params):
    ts, live = server
    headers = basic_auth(*auth) if auth else {}
    return urllib3.request("GET", f"{live.url}{path}", fields=params, headers=headers, redirect=False)


def test_search_needs_credentials_when_anonymous_is_off(server):
    response = get(server, f"{V1}/search", name="tool")
    assert response.status == 401
    assert "Basic" in response.headers["WWW-Authenticate"]


def test_search_returns_components_with_assets_only_from_readable_repositories(server):
    ts, _ = server
    admin = get(server, f"{V1}/search", auth=("admin", ts.admin_password), name="tool").json()
    assert {(c["repository"], c["version"]) for c in admin["items"]} == {
        ("hosted-a", "1.0"), ("hosted-a", "1.1"), ("hosted-a", "2.0"), ("hosted-b", "3.0"), ("private", "9.9")}
    item = admin["items"][0]
    assert item["group"] == "cwiq" and item["format"] == "raw"
    assert item["assets"][0]["path"].endswith(".tgz")
    assert item["assets"][0]["checksum"]["sha256"]
    reader = get(server, f"{V1}/search", auth=("reader", "reader-pw"), name="tool").json()
    assert {c["repository"] for c in reader["items"]} == {"hosted-a", "hosted-b"}
    assert get(server, f"{V1}/search", auth=("reader", "reader-pw"), repository="private").status == 403


def test_search_a_group_searches_its_members_and_filters_combine(server):
    ts, _ = server
    auth = ("reader", "reader-pw")
    body = get(server, f"{V1}/search/assets", auth=auth, repository="group", version="3.0").json()
    assert [a["path"] for a in body["items"]] == ["tool/3.0/tool-3.0.tgz"]
    assert body["items"][0]["repository"] == "hosted-b"
    assert body["items"][0]["downloadUrl"].endswith("/repository/hosted-b/tool/3.0/tool-3.0.tgz")
    assert get(server, f"{V1}/search/assets", auth=auth, format="npm").json()["items"] == []
    sha = body["items"][0]["checksum"]["sha256"]
    by_sha = get(server, f"{V1}/search/assets", auth=auth, sha256=sha).json()["items"]
    assert [a["path"] for a in by_sha] == ["tool/3.0/tool-3.0.tgz"]
    keyword = get(server, f"{V1}/search/assets", auth=auth, q="tool-1.").json()["items"]
    assert sorted(a["path"] for a in keyword) == ["tool/1.0/tool-1.0.tgz", "tool/1.1/tool-1.1.tgz"]


def test_sort_and_direction(server):
    ts, _ = server
    auth = ("admin", ts.admin_password)
    down = get(server, f"{V1}/search", auth=auth, name="tool", sort="version", direction="desc").json()["items"]
    assert [c["version"] for c in down] == ["9.9", "3.0", "2.0", "1.1", "1.0"]
    assert get(server, f"{V1}/search", auth=auth, sort="colour").status == 400
    assert get(server, f"{V1}/search", auth=auth, direction="sideways").status == 400


def test_paging_with_continuation_token(server):
    ts, live = server
    repository = ts.stowage.repository("hosted-a")
    for i in range(120):
        body = f"bulk-{i}".encode()
        repository.store(f"bulk/{i:03}.bin", io.BytesIO(body), length=len(body))
    auth = ("admin", ts.admin_password)
    seen, token, pages = [], None, 0
    while True:
        params = {"repository": "hosted-a", "q": "bulk/", "sort": "repository"}
        if token:
            params["continuationToken"] = token
        body = get(server, f"{V1}/search/assets", auth=auth, **params).json()
        seen += [a["path"] for a in body["items"]]
        pages += 1
        token = body["continuationToken"]
        if token is None:
            break
    assert pages == 3
    assert sorted(seen) == [f"bulk/{i:03}.bin" for i in range(120)]
    assert len(set(seen)) == 120
    assert get(server, f"{V1}/search/assets", auth=auth, continuationToken="!!not-a-token").status == 400


def test_download_redirects_to_the_single_match(server):
    ts, live = server
    auth = ("admin", ts.admin_password)
    response = get(server, f"{V1}/search/assets/download", auth=auth, repository="hosted-b", name="tool")
    assert response.status == 302
    location = response.headers["Location"]
    assert location == f"{live.url}/repository/hosted-b/tool/3.0/tool-3.0.tgz"
    assert urllib3.request("GET", location, headers=basic_auth(*auth)).data == b"hosted-b-3.0"


def test_download_is_404_without_match_and_400_when_ambiguous_unless_sorted(server):
    ts, live = server
    auth = ("admin", ts.admin_password)
    assert get(server, f"{V1}/search/assets/download", auth=auth, name="nothing").status == 404
    ambiguous = get(server, f"{V1}/search/assets/download", auth=auth, repository="hosted-a", name="tool")
    assert ambiguous.status == 400
    assert b"sort" in ambiguous.data
    newest = get(server, f"{V1}/search/assets/download", auth=auth, repository="hosted-a", name="tool",
                 sort="version", direction="desc")
    assert newest.status == 302
    assert newest.headers["Location"].endswith("/tool/2.0/tool-2.0.tgz")
