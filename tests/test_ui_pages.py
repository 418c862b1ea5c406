"""The web UI's pages through the falcon test client: escaping, permissions, paging, snippets, sign-in."""

from __future__ import annotations

import base64
import io
import re

import pytest

from stowage.models import Component
from stowage.plugin import Format, FormatHandler, hookimpl
from stowage.security import User
from stowage.testing.harness import basic_auth
from stowage.ui.browse import BrowseResource
from stowage.ui.usage import docker_usage, npm_usage, pypi_usage, usage_for, yum_usage

BROWSE = "/service/rest/repository/browse"


def store(ts, repository, path, body=b"x", **kwargs):
    ts.stowage.repository(repository).store(path, io.BytesIO(body), length=len(body), **kwargs)


def links(html: str) -> list[str]:
    return re.findall(r'href="([^"]*)"', html)


class TinyFormat:
    """A non-raw format with components (and a usage snippet that can be told to fail)."""

    fail = False

    @hookimpl
    def stowage_register_formats(self):
        def usage(repository, base_url):
            if TinyFormat.fail:
                raise RuntimeError("broken plugin")
            return f"tiny-client --index {base_url}/repository/{repository.name}/"

        return [Format(name="tiny", handler=FormatHandler, usage=usage),
                Format(name="bare", handler=FormatHandler)]


@pytest.fixture
def ts(stowage_factory):
    ts = stowage_factory(plugins=[TinyFormat()])
    ts.create_repository(name="raw-hosted", format="raw", type="hosted")
    return ts


def test_welcome_lists_repositories_with_type_status_url_and_members(ts):
    ts.create_repository(name="raw-proxy", format="raw", type="proxy", proxy={"remoteUrl": "http://127.0.0.1:9/"},
                         httpClient={"blocked": True})
    ts.create_repository(name="raw-group", format="raw", type="group",
                         group={"memberNames": ["raw-hosted", "raw-proxy"]})
    response = ts.client.simulate_get("/", headers={"Host": "repo.example:8081"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    rows = dict(re.findall(r'<tr><td><a href="[^"]*">([^<]+)</a></td>(.*?)</tr>', html))
    assert set(rows) == {"raw-hosted", "raw-proxy", "raw-group"}
    assert "http://repo.example:8081/repository/raw-hosted/" in rows["raw-hosted"]
    assert "remote blocked" in rows["raw-proxy"] and "http://127.0.0.1:9/" in rows["raw-proxy"]
    assert f'{BROWSE}/raw-hosted/' in rows["raw-group"] and f'{BROWSE}/raw-proxy/' in rows["raw-group"]
    assert "online" in rows["raw-hosted"]
    assert "Content-Security-Policy" in response.headers or "content-security-policy" in response.headers


def test_everything_user_controlled_is_escaped(ts):
    evil = '<img src=x onerror=alert(1)>"\'.txt'
    store(ts, "raw-hosted", f"dir/{evil}")
    store(ts, "raw-hosted", "<em>dir/inside.txt")
    browse = ts.client.simulate_get(f"{BROWSE}/raw-hosted/dir/").text
    assert "<img" not in browse and "onerror=alert(1)>" not in browse
    assert "&lt;img src=x onerror=alert(1)&gt;&quot;&#x27;.txt" in browse
    assert "/repository/raw-hosted/dir/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E%22%27.txt" in browse
    root = ts.client.simulate_get(f"{BROWSE}/raw-hosted/").text
    assert "<em>" not in root and "&lt;em&gt;dir/</a>" in root and "/%3Cem%3Edir/" in root
    search = ts.client.simulate_get("/search", params={"q": '"><script>alert(1)</script>'}).text
    assert "<script>alert" not in search
    assert 'value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in search
    login = ts.client.simulate_get("/", headers={"Host": 'evil"><script>x</script>'}).text
    assert "<script>x" not in login


def test_anonymous_sees_only_what_anonymous_may_read_and_gets_the_sign_in_form(ts):
    ts.create_repository(name="secret", format="raw", type="hosted")
    ts.stowage.security.set_anonymous_settings(False)
    anonymous = ts.client.simulate_get("/").text
    assert "raw-hosted" not in anonymous and "secret" not in anonymous
    assert 'href="/login?next=%2F"' in anonymous
    form = ts.client.simulate_get("/login", params={"next": f"{BROWSE}/secret/"})
    assert form.status_code == 200 and "www-authenticate" not in form.headers
    assert form.headers["content-type"].startswith("text/html")
    assert f'name="next" value="{BROWSE}/secret/"' in form.text and 'type="password"' in form.text
    # A client that sends Basic credentials to /login (browsers that answered a challenge) is sent on.
    signed_in = ts.client.simulate_get("/login", params={"next": f"{BROWSE}/secret/"}, headers=ts.admin)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == f"{BROWSE}/secret/"
    wrong = ts.client.simulate_get("/login", headers=basic_auth("admin", "wrong"))
    assert wrong.status_code == 401
    admin = ts.client.simulate_get("/", headers=ts.admin).text
    assert "raw-hosted" in admin and "secret" in admin and "Signed in as <b>admin</b>" in admin
    browse = ts.client.simulate_get(f"{BROWSE}/secret/")
    assert browse.status_code == 401 and browse.headers["www-authenticate"].startswith("Basic")


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "evil", ""])
def test_login_never_redirects_off_the_server(ts, target):
    response = ts.client.simulate_get("/login", params={"next": target}, headers=ts.admin)
    assert response.status_code == 303 and response.headers["location"] == "/"


def test_a_reader_sees_only_readable_repositories_everywhere(ts):
    ts.create_repository(name="secret", format="raw", type="hosted")
    store(ts, "raw-hosted", "pub/tool-1.0.tgz", b"public")
    store(ts, "secret", "pub/tool-9.9.tgz", b"private")
    security = ts.stowage.security
    security.save_role({"id": "r", "name": "r", "description": "", "roles": [],
                        "privileges": ["nx-repository-view-raw-raw-hosted-read"]})
    security.save_user(User(user_id="reader", roles=("r",)), "reader-pw")
    security.set_anonymous_settings(False)
    reader = basic_auth("reader", "reader-pw")
    welcome = ts.client.simulate_get("/", headers=reader).text
    assert "raw-hosted" in welcome and "secret" not in welcome
    assert ts.client.simulate_get(f"{BROWSE}/secret/", headers=reader).status_code == 403
    results = ts.client.simulate_get("/search", params={"q": "tool"}, headers=reader).text
    assert "tool-1.0.tgz" in results and "tool-9.9.tgz" not in results and "secret" not in results
    assert "tool-9.9.tgz" in ts.client.simulate_get("/search", params={"q": "tool"}, headers=ts.admin).text
    assert ts.client.simulate_get("/search", params={"q": "tool", "repository": "secret"},
                                  headers=reader).status_code == 403


def test_browse_lists_one_directory_with_size_time_sha_and_download_links(ts):
    store(ts, "raw-hosted", "builds/1.0/tool.tar.gz", b"0123456789" * 300)
    store(ts, "raw-hosted", "builds/1.0/sub/deep.txt")
    store(ts, "raw-hosted", "builds/readme.txt")
    html = ts.client.simulate_get(f"{BROWSE}/raw-hosted/builds/1.0/").text
    assert '<a href="/repository/raw-hosted/builds/1.0/tool.tar.gz" download>tool.tar.gz</a>' in html
    assert f'href="{BROWSE}/raw-hosted/builds/1.0/sub/">sub/</a>' in html
    assert "deep.txt" not in html and "readme.txt" not in html
    assert "2.9 KiB" in html and 'title="3000 bytes"' in html
    digest = ts.stowage.catalog.get_asset("raw-hosted", "builds/1.0/tool.tar.gz").blob_sha256
    assert f'data-copy="{digest}"' in html
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", html)
    crumbs = re.search(r'<ol class="crumbs">(.*?)</ol>', html).group(1)
    assert links(crumbs) == ["/", f"{BROWSE}/raw-hosted/", f"{BROWSE}/raw-hosted/builds/"]
    assert f'href="{BROWSE}/raw-hosted/builds/">../</a>' in html
    assert ts.client.simulate_get(f"{BROWSE}/raw-hosted/nothing/").status_code == 404
    assert ts.client.simulate_get(f"{BROWSE}/raw-hosted/builds").headers["location"] == f"{BROWSE}/raw-hosted/builds/"
    assert ts.client.simulate_get(f"{BROWSE}/raw-hosted/../x/").status_code == 400
    assert ts.client.simulate_get(f"{BROWSE}/no-such-repo/").status_code == 404


def test_big_directories_page_with_continuation_tokens(ts, monkeypatch):
    monkeypatch.setattr(BrowseResource, "PAGE_SIZE", 3)
    names = [f"f{i:02d}.bin" for i in range(7)]
    for name in names:
        store(ts, "raw-hosted", f"big/{name}")
    for i in range(40):
        store(ts, "raw-hosted", f"big/f03.bin.d/{i}")  # a sub-directory between files
    url, seen, pages = f"{BROWSE}/raw-hosted/big/", [], 0
    while url:
        html = ts.client.simulate_get(url.split("?")[0], query_string=url.partition("?")[2]).text
        pages += 1
        seen += re.findall(r'<tr class="(?:file|dir)"><td><a href="[^"]*"(?: download)?>([^<]+)</a>', html)
        following = re.search(r'<a rel="next" href="([^"]+)"', html)
        url = following.group(1).replace("&amp;", "&") if following else None
    expected = names[:4] + ["f03.bin.d/"] + names[4:]
    assert seen == expected and pages == 3
    for garbage in ("***", "", "%%%"):
        bad = ts.client.simulate_get(f"{BROWSE}/raw-hosted/big/", query_string=f"page={garbage}x")
        assert bad.status_code == 400 and "continuationToken" in bad.text


def test_paging_links_keep_odd_directory_names(ts, monkeypatch):
    monkeypatch.setattr(BrowseResource, "PAGE_SIZE", 1)
    for name in ("one", "two"):
        store(ts, "raw-hosted", f"a #?%b/{name}")
    first = ts.client.simulate_get(f"{BROWSE}/raw-hosted/a%20%23%3F%25b/").text
    following = re.search(r'<a rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    path, _, query = following.partition("?")
    assert path == f"{BROWSE}/raw-hosted/a%20%23%3F%25b/"
    second = ts.client.simulate_get(path, query_string=query).text
    assert ">one</a>" in first and ">two</a>" in second and ">one</a>" not in second


def test_search_page_finds_paths_and_components_and_pages(ts, monkeypatch):
    store(ts, "raw-hosted", "tools/tool-1.0.tgz", b"one",
          component=Component(repository="raw-hosted", format="raw", name="tools/tool-1.0.tgz", group="/tools"))
    store(ts, "raw-hosted", "other/unrelated.txt")
    html = ts.client.simulate_get("/search", params={"q": "tool-1"}).text
    assert '<a href="/repository/raw-hosted/tools/tool-1.0.tgz" download>tools/tool-1.0.tgz</a>' in html
    # the component column names the raw component as Nexus does (its name is the full path, not group/name)
    assert "/tools/tools/" not in html and "unrelated" not in html
    assert "No results" in ts.client.simulate_get("/search", params={"q": "nothing-like-this"}).text
    assert "<table" not in ts.client.simulate_get("/search").text
    monkeypatch.setattr("stowage.ui.search.PAGE_SIZE", 1)
    store(ts, "raw-hosted", "tools/tool-1.1.tgz", b"two")
    first = ts.client.simulate_get("/search", params={"q": "tool-1"}).text
    following = re.search(r'<a rel="next" href="/search\?([^"]+)"', first).group(1).replace("&amp;", "&")
    second = ts.client.simulate_get("/search", query_string=following).text
    assert ("tool-1.0.tgz" in first) != ("tool-1.0.tgz" in second)
    assert ("tool-1.1.tgz" in first) != ("tool-1.1.tgz" in second)


def test_components_view_for_other_formats_pages_and_lists_assets(ts, monkeypatch):
    monkeypatch.setattr(BrowseResource, "COMPONENTS_PAGE_SIZE", 2)
    ts.create_repository(name="tiny-hosted", format="tiny", type="hosted")
    for version in ("1.0", "2.0", "3.0"):
        component = Component(repository="tiny-hosted", format="tiny", name="<lib>", version=version)
        store(ts, "tiny-hosted", f"lib/{version}/lib-{version}.whl", version.encode(), component=component)
        store(ts, "tiny-hosted", f"lib/{version}/lib-{version}.pom", version.encode(), component=component)
    first = ts.client.simulate_get(f"{BROWSE}/tiny-hosted/").text
    assert 'aria-current="page" href="/service/rest/repository/browse/tiny-hosted/?view=components"' in first
    assert "&lt;lib&gt;" in first and "1.0" in first and "2.0" in first and "3.0</td>" not in first
    assert '/repository/tiny-hosted/lib/1.0/lib-1.0.whl" download>' in first
    assert '/repository/tiny-hosted/lib/1.0/lib-1.0.pom" download>' in first
    following = re.search(r'<a rel="next" href="[^"?]*\?([^"]+)"', first).group(1).replace("&amp;", "&")
    second = ts.client.simulate_get(f"{BROWSE}/tiny-hosted/", query_string=following).text
    assert "3.0</td>" in second and "lib-3.0.whl" in second
    files = ts.client.simulate_get(f"{BROWSE}/tiny-hosted/", params={"view": "files"}).text
    assert f'href="{BROWSE}/tiny-hosted/lib/">lib/</a>' in files


def test_group_page_links_members_and_proxy_page_says_cache(ts):
    ts.create_repository(name="raw-proxy", format="raw", type="proxy", proxy={"remoteUrl": "http://127.0.0.1:9/"})
    ts.create_repository(name="raw-group", format="raw", type="group",
                         group={"memberNames": ["raw-hosted", "raw-proxy"]})
    group = ts.client.simulate_get(f"{BROWSE}/raw-group/").text
    members = re.search(r"<ol>(.*?)</ol>", group).group(1)
    assert links(members) == [f"{BROWSE}/raw-hosted/", f"{BROWSE}/raw-proxy/"]
    assert "cache" in ts.client.simulate_get(f"{BROWSE}/raw-proxy/").text


def test_usage_snippets_follow_the_url_the_browser_used(ts):
    ts.create_repository(name="tiny-hosted", format="tiny", type="hosted")
    ts.create_repository(name="bare-hosted", format="bare", type="hosted")
    proxied = {"Host": "internal:8081", "X-Forwarded-Host": "nexus.example", "X-Forwarded-Proto": "https",
               "X-Forwarded-Prefix": "/artifacts"}
    raw = ts.client.simulate_get(f"{BROWSE}/raw-hosted/", headers=proxied).text
    assert "curl -fu &lt;user&gt; --upload-file &lt;file&gt; https://nexus.example/artifacts/repository/raw-hosted/" in raw
    assert 'href="/artifacts/service/rest/repository/browse/raw-hosted/?view=' not in raw  # raw has no tabs
    assert all(link.startswith(("/artifacts/", "data:")) for link in links(raw)), links(raw)
    tiny = ts.client.simulate_get(f"{BROWSE}/tiny-hosted/", headers=proxied).text
    assert "tiny-client --index https://nexus.example/artifacts/repository/tiny-hosted/" in tiny
    bare = ts.client.simulate_get(f"{BROWSE}/bare-hosted/").text
    assert "curl -fLO http://falconframework.org/repository/bare-hosted/&lt;path&gt;" in bare
    TinyFormat.fail = True
    try:
        fallback = ts.client.simulate_get(f"{BROWSE}/tiny-hosted/").text
    finally:
        TinyFormat.fail = False
    assert "curl -fLO http://falconframework.org/repository/tiny-hosted/" in fallback


def test_builtin_snippets_for_the_contract_formats(ts):
    repository = ts.stowage.repository("raw-hosted")
    base = "https://nexus.example"
    assert "index-url = https://nexus.example/repository/raw-hosted/simple/" in pypi_usage(repository, base)
    assert "repository = https://nexus.example/repository/raw-hosted/" in pypi_usage(repository, base)
    assert "registry=https://nexus.example/repository/raw-hosted/" in npm_usage(repository, base)
    assert "baseurl=https://nexus.example/repository/raw-hosted/" in yum_usage(repository, base)
    assert "docker pull nexus.example/raw-hosted/<image>:<tag>" in docker_usage(repository, base)
    assert "raw.asset1" in usage_for(repository, base)  # the raw plugin's own snippet


def test_static_files_are_cached_by_version_and_answer_304(ts):
    from stowage.ui import static

    response = ts.client.simulate_get(static.CSS_PATH, params={"v": static.VERSION})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/css")
    assert "immutable" in response.headers["cache-control"]
    again = ts.client.simulate_get(static.JS_PATH, headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    page = ts.client.simulate_get("/").text
    assert f"{static.CSS_PATH}?v={static.VERSION}" in page and "<style" not in page and "<script>" not in page


def test_basic_credentials_in_the_header_are_never_echoed(ts):
    token = base64.b64encode(b"admin:" + ts.admin_password.encode()).decode()
    html = ts.client.simulate_get("/", headers={"Authorization": f"Basic {token}"}).text
    assert token not in html and ts.admin_password not in html



def test_the_welcome_page_reads_no_assets_and_a_bounded_number_of_rows(ts):
    for i in range(30):
        ts.create_repository(name=f"raw-{i:02d}", format="raw", type="hosted")
        store(ts, f"raw-{i:02d}", "some/file.bin")
    ts.client.simulate_get("/")  # warm the repository list
    statements: list[str] = []
    if not hasattr(ts.stowage.catalog, "_conn"):
        pytest.skip("traces the SQLite catalog's statements (STOWAGE_TEST_CATALOG=postgresql)")
    conn = ts.stowage.catalog._conn
    conn.set_trace_callback(statements.append)
    try:
        html = ts.client.simulate_get("/").text
    finally:
        conn.set_trace_callback(None)
    assert html.count("<tr><td>") == 31
    assert not [s for s in statements if "assets" in s or "components" in s]
    assert len(statements) <= 3 * 31, (len(statements), statements[:8])
