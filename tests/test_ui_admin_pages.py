"""The administration pages through the falcon test client: every format and type has a create form
with the fields that apply (Nexus JSON names), secrets are never shown, delete says what is lost."""

from __future__ import annotations

import io
import re
from urllib.parse import quote

import pytest

from stowage.models import RepositoryType


@pytest.fixture
def ts(stowage_factory):
    ts = stowage_factory()
    ts.create_repository(name="raw-hosted", format="raw", type="hosted")
    ts.create_repository(name="raw-proxy", format="raw", type="proxy",
                         proxy={"remoteUrl": "http://127.0.0.1:9/"},
                         httpClient={"authentication": {"type": "username", "username": "bot",
                                                        "password": "s3cret-upstream-pw"}})
    ts.create_repository(name="raw-group", format="raw", type="group",
                         group={"memberNames": ["raw-hosted", "raw-proxy"]})
    return ts


def page(ts, path: str) -> str:
    response = ts.client.simulate_get(path, headers=ts.admin)
    assert response.status_code == 200, (path, response.text)
    return response.text


def test_every_format_and_type_has_a_create_form_with_the_fields_that_apply(ts):
    for format_name in ts.stowage.plugins.formats:
        for type_ in RepositoryType:
            html = page(ts, f"/admin/repositories/new/{format_name}/{type_.value}")
            assert f'data-url="/service/rest/v1/repositories/{format_name}/{type_.value}"' in html
            assert 'name="name"' in html and 'name="storage.blobStoreName"' in html
            assert ('name="proxy.remoteUrl"' in html) == (type_ is RepositoryType.PROXY)
            assert ('name="group.memberNames"' in html) == (type_ is RepositoryType.GROUP)
            assert ('name="storage.writePolicy"' in html) == (type_ is RepositoryType.HOSTED)
    docker = page(ts, "/admin/repositories/new/docker/hosted")
    assert 'name="docker.httpPort" type="number"' in docker and 'name="docker.forceBasicAuth"' in docker
    assert 'name="dockerProxy.indexType"' not in docker
    assert 'name="dockerProxy.indexType"' in page(ts, "/admin/repositories/new/docker/proxy")
    assert 'name="yum.repodataDepth"' in page(ts, "/admin/repositories/new/yum/hosted")
    assert ts.client.simulate_get("/admin/repositories/new/nope/hosted", headers=ts.admin).status_code == 404
    assert ts.client.simulate_get("/admin/repositories/new/raw/nope", headers=ts.admin).status_code == 404


def test_edit_shows_the_stored_settings_but_never_a_secret(ts):
    html = page(ts, "/admin/repositories/edit/raw-proxy")
    assert 'value="http://127.0.0.1:9/"' in html and 'value="bot"' in html
    assert "s3cret-upstream-pw" not in html
    assert 'data-method="PUT" data-url="/service/rest/v1/repositories/raw/proxy/raw-proxy"' in html
    group = page(ts, "/admin/repositories/edit/raw-group")
    assert "raw-hosted\nraw-proxy</textarea>" in group


def test_delete_confirmation_names_what_will_be_lost(ts):
    for i in range(3):
        ts.stowage.repository("raw-hosted").store(f"f/{i}.txt", io.BytesIO(b"x"), length=1)
    html = page(ts, "/admin/repositories/delete/raw-hosted")
    assert "3 stored files" in html and "raw-group" in html and "/repository/raw-hosted/" in html
    assert 'data-method="DELETE" data-url="/service/rest/v1/repositories/raw-hosted"' in html


def test_upload_page_lists_only_writable_hosted_repositories(ts):
    from stowage.security import User

    ts.stowage.security.save_role({"id": "w", "name": "w", "description": "", "roles": [],
                                   "privileges": ["nx-repository-view-raw-raw-hosted-*"]})
    ts.stowage.security.save_user(User(user_id="writer", roles=("w",)), "writer-pw")
    from stowage.testing.harness import basic_auth

    writer = basic_auth("writer", "writer-pw")
    listing = ts.client.simulate_get("/upload", headers=writer).text
    assert 'href="/upload/raw-hosted"' in listing and "raw-proxy" not in listing
    form = ts.client.simulate_get("/upload/raw-hosted", headers=writer).text
    assert 'data-url="/service/rest/v1/components?repository=raw-hosted"' in form
    assert 'name="raw.asset1" type="file"' in form and 'name="raw.directory"' in form
    ts.create_repository(name="raw-other", format="raw", type="hosted")
    assert ts.client.simulate_get("/upload/raw-other", headers=writer).status_code == 403
    assert ts.client.simulate_get("/upload/raw-proxy", headers=writer).status_code == 400
    assert ts.client.simulate_get("/upload").status_code == 303


def test_upload_page_leaves_out_formats_without_component_uploads(ts):
    """docker takes pushes only: FormatHandler declares upload_component, so only an override counts."""
    ts.create_repository(name="images", format="docker", type="hosted")
    assert 'href="/upload/raw-hosted"' in ts.client.simulate_get("/upload", headers=ts.admin).text
    assert "/upload/images" not in ts.client.simulate_get("/upload", headers=ts.admin).text
    assert ts.client.simulate_get("/upload/images", headers=ts.admin).status_code == 400


def test_cleanup_and_task_pages(ts):
    admin = {**ts.admin, "Content-Type": "application/json"}
    created = ts.client.simulate_post("/service/rest/v1/cleanup-policies", headers=admin,
                                      json={"name": "old-raw", "format": "raw", "criteriaLastBlobUpdated": 30})
    assert created.status_code == 201, created.text
    listing = page(ts, "/admin/cleanup")
    assert "old-raw" in listing and "published more than (days): 30" in listing
    form = page(ts, "/admin/cleanup/old-raw")
    assert 'data-url="/service/rest/v1/cleanup-policies/old-raw"' in form
    assert 'data-url="/service/rest/v1/cleanup-policies/preview"' in form and 'data-only-with="preview-button"' in form
    assert 'value="30"' in form
    tasks = page(ts, "/admin/tasks")
    assert "blobstore.compact" in tasks and "Run now" in tasks
    assert "blobstore.compact" in page(ts, "/admin/tasks/new")
    detail = page(ts, "/admin/tasks/blobstore.compact")
    assert 'data-url="/service/rest/v1/tasks/blobstore.compact/run"' in detail
    assert 'name="frequency.schedule"' in detail and 'data-type="intlist"' in detail
    for task_type in ("blobstore.compact",):
        assert 'name="type" value="blobstore.compact"' in page(ts, f"/admin/tasks/new/{task_type}")


def _luminance(color: str) -> float:
    channels = [int(color[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_stylesheets_colours_pass_wcag_aa():
    from stowage.ui.static import CSS

    palette = dict(re.findall(r"--([a-z-]+):(#[0-9a-f]{6})", CSS))
    white = "#ffffff"
    # Text (4.5:1): body, muted, links/buttons, badges and errors on white and on the table header
    # background; white text on the header bar and on primary/danger buttons.
    for name in ("fg", "muted", "accent", "ok", "bad", "warn"):
        assert contrast(palette[name], white) >= 4.5, name
        assert contrast(palette[name], palette["bg"]) >= 4.5, name
    for background in ("head", "accent", "bad"):
        assert contrast(white, palette[background]) >= 4.5, background
    # Focus indicators (3:1, WCAG 1.4.11): on the page and on the dark header bar.
    assert contrast(palette["focus"], white) >= 3
    assert contrast(palette["focus-dark"], palette["head"]) >= 3


def test_content_selector_pages(ts):
    admin = {**ts.admin, "Content-Type": "application/json"}
    created = ts.client.simulate_post("/service/rest/v1/security/content-selectors", headers=admin,
                                      json={"name": "npm-cwiq", "description": "our scope",
                                            "expression": 'format == "npm" and path =^ "/@cwiq/"'})
    assert created.status_code == 204, created.text
    listing = page(ts, "/admin/selectors")
    assert "npm-cwiq" in listing and "format == &quot;npm&quot;" in listing
    form = page(ts, "/admin/selectors/npm-cwiq")
    assert 'data-url="/service/rest/v1/security/content-selectors/npm-cwiq"' in form
    assert 'name="expression"' in form and 'data-type="list"' not in form.split('name="expression"')[0][-200:]
    assert 'data-url="/service/rest/v1/security/content-selectors"' in page(ts, "/admin/selectors/new")


def test_realm_and_ldap_pages(ts):
    admin = {**ts.admin, "Content-Type": "application/json"}
    realms = page(ts, "/admin/realms")
    assert 'data-encoding="jsonlist"' in realms and 'data-url="/service/rest/v1/security/realms/active"' in realms
    assert "LdapRealm" in realms
    body = {"name": "corp", "protocol": "ldap", "host": "127.0.0.1", "port": 389, "searchBase": "dc=example,dc=org",
            "authScheme": "SIMPLE", "authUsername": "cn=admin,dc=example,dc=org", "authPassword": "bind-s3cret",
            "connectionTimeoutSeconds": 30, "connectionRetryDelaySeconds": 300, "maxIncidentsCount": 3}
    created = ts.client.simulate_post("/service/rest/v1/security/ldap", headers=admin, json=body)
    assert created.status_code == 201, created.text
    assert "corp" in page(ts, "/admin/ldap")
    form = page(ts, "/admin/ldap/corp")
    assert "bind-s3cret" not in form and 'name="authPassword" type="password"' in form
    assert 'value="dc=example,dc=org"' in form and 'name="userSubtree" type="checkbox"' in form
    assert 'data-method="PUT" data-url="/service/rest/v1/security/ldap/corp"' in form
    new = page(ts, "/admin/ldap/new")
    assert 'name="port" type="number" value="389"' in new and 'name="authPassword" type="password"' in new


def test_blob_store_page_offers_file_and_s3_stores(ts):
    html = page(ts, "/admin/blobstores")
    assert 'data-url="/service/rest/v1/blobstores/file"' in html
    assert 'data-url="/service/rest/v1/blobstores/s3"' in html
    for name in ("bucketConfiguration.bucket.name", "bucketConfiguration.bucket.region",
                 "bucketConfiguration.bucketSecurity.secretAccessKey",
                 "bucketConfiguration.advancedBucketConnection.endpoint"):
        assert f'name="{name}"' in html
    assert re.search(r"used by (raw-[a-z]+(, )?){3}<", html)


@pytest.mark.parametrize("path", ["/upload", "/upload/raw-hosted", "/account", "/admin/repositories"])
def test_signed_in_pages_send_an_anonymous_visitor_to_sign_in_and_back(ts, path):
    response = ts.client.simulate_get(path, query_string="x=1")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=" + quote(f"{path}?x=1", safe="")
    assert response.headers["cache-control"] == "no-store"  # it depends on the (absent) session cookie
