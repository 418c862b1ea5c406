"""Web UI sessions and their CSRF tokens through the falcon test client (the browser tests drive the same
paths in Chromium): cookie attributes, hashed ids in the catalog, timeouts, sign-out, session-bound tokens,
and what a session cookie can never do."""

from __future__ import annotations

import hashlib
import re
import time

import pytest
from attrs import evolve

from stowage.http.csrf import CSRF_TOKEN
from stowage.http.session import SESSION_COOKIE, SESSIONS, sessions
from stowage.security import User

V1 = "/service/rest/v1"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def ts(stowage_factory):
    ts = stowage_factory()
    ts.create_repository(name="raw-hosted", format="raw", type="hosted")
    ts.stowage.security.save_user(User(user_id="dev", roles=("nx-deployer",)), "dev-pw")
    return ts


def form_token(html: str) -> str:
    return re.search(rf'name="{CSRF_TOKEN}" value="([^"]+)"', html).group(1)


def sign_in(ts, user="admin", password=None, **kwargs):
    """Sign in as a browser would: load the form (csrf cookie + hidden field), post it; the cookies."""
    page = ts.client.simulate_get("/login", **kwargs)
    csrf_cookie = page.cookies[CSRF_TOKEN].value
    token = form_token(page.text)
    assert token == csrf_cookie
    password = ts.admin_password if password is None else password
    response = ts.client.simulate_post(
        "/login", body=f"username={user}&password={password}&next=%2Fadmin&{CSRF_TOKEN}={token}",
        headers={"Content-Type": FORM, "Cookie": f"{CSRF_TOKEN}={csrf_cookie}"}, **kwargs)
    return response, csrf_cookie


def signed_in(ts, user="admin", password=None):
    response, csrf_cookie = sign_in(ts, user, password)
    assert response.status_code == 303, response.text
    session_id = response.cookies[SESSION_COOKIE].value
    cookie = f"{CSRF_TOKEN}={csrf_cookie}; {SESSION_COOKIE}={session_id}"
    page = ts.client.simulate_get("/", headers={"Cookie": cookie})
    return session_id, cookie, form_token(page.text), csrf_cookie


def test_sign_in_starts_a_session_with_a_strict_http_only_cookie_and_a_hashed_id(ts):
    response, _ = sign_in(ts)
    assert response.status_code == 303 and response.headers["location"] == "/admin"
    cookie = response.cookies[SESSION_COOKIE]
    assert cookie.http_only and cookie.same_site == "Strict" and not cookie.secure and cookie.path == "/"
    assert cookie.max_age is None  # gone with the browser; the server enforces the timeouts
    stored = dict(ts.stowage.catalog.list_documents(SESSIONS))
    assert list(stored) == [hashlib.sha256(cookie.value.encode()).hexdigest()]
    assert cookie.value not in str(stored)
    page = ts.client.simulate_get("/", headers={"Cookie": f"{SESSION_COOKIE}={cookie.value}"})
    assert "Signed in as <b>admin</b>" in page.text and 'action="/logout"' in page.text


def test_session_cookie_is_secure_over_https_and_behind_a_proxy_that_says_https(ts, stowage_factory):
    response, _ = sign_in(ts, protocol="https")
    assert response.cookies[SESSION_COOKIE].secure
    behind = stowage_factory(base_url="https://repo.example.org")
    response, _ = sign_in(behind)
    assert response.cookies[SESSION_COOKIE].secure


@pytest.mark.parametrize("user,password", [("admin", "wrong"), ("nobody", "x"), ("admin", ""), ("a:b", "c")])
def test_wrong_credentials_start_no_session(ts, user, password):
    response, _ = sign_in(ts, user, password)
    assert response.status_code == 401 and SESSION_COOKIE not in response.cookies
    assert "Wrong user name or password." in response.text
    assert "www-authenticate" not in response.headers  # no browser dialog on top of the form
    assert ts.stowage.catalog.list_documents(SESSIONS) == []


def test_sign_in_form_without_its_token_is_refused(ts):
    page = ts.client.simulate_get("/login")
    csrf_cookie = page.cookies[CSRF_TOKEN].value
    for body in (f"username=admin&password={ts.admin_password}",
                 f"username=admin&password={ts.admin_password}&{CSRF_TOKEN}=forged-forged-forged-1"):
        refused = ts.client.simulate_post("/login", body=body,
                                          headers={"Content-Type": FORM, "Cookie": f"{CSRF_TOKEN}={csrf_cookie}"})
        assert refused.status_code == 403 and SESSION_COOKIE not in refused.cookies
    assert ts.stowage.catalog.list_documents(SESSIONS) == []


def test_sign_out_ends_the_session_on_the_server(ts):
    session_id, cookie, token, _ = signed_in(ts)
    assert ts.client.simulate_get("/admin", headers={"Cookie": cookie}).status_code == 200
    # Sign-out is a form post with the session's token; a GET or a post without it does nothing.
    assert ts.client.simulate_get("/logout", headers={"Cookie": cookie}).status_code == 405
    refused = ts.client.simulate_post("/logout", body="", headers={"Content-Type": FORM, "Cookie": cookie})
    assert refused.status_code == 403
    out = ts.client.simulate_post("/logout", body=f"{CSRF_TOKEN}={token}", headers={"Content-Type": FORM,
                                                                                     "Cookie": cookie})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert ts.stowage.catalog.list_documents(SESSIONS) == []
    # The old cookie, replayed, is nobody.
    again = ts.client.simulate_get("/admin", headers={"Cookie": cookie})
    assert again.status_code == 303 and again.headers["location"].startswith("/login")
    assert ts.client.simulate_get(f"{V1}/security/users", headers={"Cookie": cookie}).status_code == 401


def test_idle_and_absolute_timeouts(ts, monkeypatch):
    session_id, cookie, _, _ = signed_in(ts)
    store = sessions(ts.stowage)
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + ts.stowage.settings.session_idle_timeout - 5)
    assert store.find(session_id) is not None  # still active: touched now
    monkeypatch.setattr(time, "time", lambda: now + 2 * ts.stowage.settings.session_idle_timeout - 10)
    assert store.find(session_id) is not None
    # Used every few minutes, it still ends at the absolute limit.
    clock = now
    while clock < now + ts.stowage.settings.session_max_age - 600:
        clock += 600
        monkeypatch.setattr(time, "time", lambda clock=clock: clock)
        assert store.find(session_id) is not None
    monkeypatch.setattr(time, "time", lambda: now + ts.stowage.settings.session_max_age + 1)
    assert store.find(session_id) is None
    assert ts.stowage.catalog.list_documents(SESSIONS) == []


def test_idle_session_ends(ts, monkeypatch):
    session_id, cookie, _, _ = signed_in(ts)
    later = time.time() + ts.stowage.settings.session_idle_timeout + 1
    monkeypatch.setattr(time, "time", lambda: later)
    assert ts.client.simulate_get(f"{V1}/security/users", headers={"Cookie": cookie}).status_code == 401


def test_timeouts_are_configurable(stowage_factory):
    ts = stowage_factory(session_idle_timeout=60.0, session_max_age=120.0)
    assert sessions(ts.stowage).idle_timeout == 60.0 and sessions(ts.stowage).max_age == 120.0


def test_rest_calls_with_the_session_need_the_sessions_own_token(ts):
    _, cookie, token, csrf_cookie = signed_in(ts)
    assert token != csrf_cookie  # pages of a session carry the session's token
    body = '{"enabled": false}'
    json_type = {"Content-Type": "application/json"}
    for headers in ({}, {CSRF_TOKEN: csrf_cookie}, {CSRF_TOKEN: "x" * 43}):
        refused = ts.client.simulate_put(f"{V1}/security/anonymous", body=body,
                                         headers={"Cookie": cookie, **json_type, **headers})
        assert refused.status_code == 403 and "CSRF" in refused.text
    assert ts.stowage.security.anonymous_settings()["enabled"] is True
    ok = ts.client.simulate_put(f"{V1}/security/anonymous", body=body,
                                headers={"Cookie": cookie, CSRF_TOKEN: token, **json_type})
    assert ok.status_code == 200 and ts.stowage.security.anonymous_settings()["enabled"] is False
    # Reading needs no token.
    assert ts.client.simulate_get(f"{V1}/security/users", headers={"Cookie": cookie}).status_code == 200


def test_a_session_cookie_never_authorises_a_format_clients_write_without_the_token(ts):
    _, cookie, token, _ = signed_in(ts, "dev", "dev-pw")
    path = "/repository/raw-hosted/x/file.txt"
    refused = ts.client.simulate_put(path, body=b"data", headers={"Cookie": cookie})
    assert refused.status_code == 403
    assert ts.stowage.catalog.get_asset("raw-hosted", "x/file.txt") is None
    stored = ts.client.simulate_put(path, body=b"data", headers={"Cookie": cookie, CSRF_TOKEN: token})
    assert stored.status_code == 201
    assert ts.client.simulate_get(path, headers={"Cookie": cookie}).text == "data"


def test_a_disabled_or_deleted_user_loses_their_session(ts):
    _, cookie, _, _ = signed_in(ts, "dev", "dev-pw")
    assert "Signed in as <b>dev</b>" in ts.client.simulate_get("/", headers={"Cookie": cookie}).text
    security = ts.stowage.security
    security.save_user(evolve(security.get_user("dev"), status="disabled"))
    assert "Signed in" not in ts.client.simulate_get("/", headers={"Cookie": cookie}).text
    security.save_user(evolve(security.get_user("dev"), status="active"))
    assert "Signed in as <b>dev</b>" in ts.client.simulate_get("/", headers={"Cookie": cookie}).text
    security.delete_user("dev")
    assert "Signed in" not in ts.client.simulate_get("/", headers={"Cookie": cookie}).text


def test_sign_in_replaces_an_existing_session_id(ts):
    first, cookie, _, csrf_cookie = signed_in(ts)
    token = form_token(ts.client.simulate_get("/login", headers={"Cookie": f"{CSRF_TOKEN}={csrf_cookie}"}).text)
    again = ts.client.simulate_post(
        "/login", body=f"username=admin&password={ts.admin_password}&{CSRF_TOKEN}={token}",
        headers={"Content-Type": FORM, "Cookie": f"{CSRF_TOKEN}={csrf_cookie}; {SESSION_COOKIE}={first}"})
    # The signed-in session's token is what the form must carry now.
    assert again.status_code == 403
    token = form_token(ts.client.simulate_get("/", headers={"Cookie": cookie}).text)
    again = ts.client.simulate_post(
        "/login", body=f"username=admin&password={ts.admin_password}&{CSRF_TOKEN}={token}",
        headers={"Content-Type": FORM, "Cookie": cookie})
    assert again.status_code == 303
    assert again.cookies[SESSION_COOKIE].value != first
    assert sessions(ts.stowage).find(first) is None


def test_non_admins_get_403_from_admin_pages_and_see_no_admin_links(ts):
    _, cookie, _, _ = signed_in(ts, "dev", "dev-pw")
    home = ts.client.simulate_get("/", headers={"Cookie": cookie}).text
    assert 'href="/admin"' not in home and 'href="/upload"' in home
    for path in ("/admin", "/admin/repositories", "/admin/repositories/new/raw/hosted", "/admin/users",
                 "/admin/users/admin", "/admin/roles", "/admin/anonymous", "/admin/blobstores", "/admin/system",
                 "/admin/repositories/delete/raw-hosted", "/admin/audit", "/admin/selectors", "/admin/cleanup",
                 "/admin/tasks", "/admin/tasks/new", "/admin/realms", "/admin/ldap", "/admin/ldap/new",
                 "/admin/user-tokens"):
        assert ts.client.simulate_get(path, headers={"Cookie": cookie}).status_code == 403, path
    assert ts.client.simulate_get("/account", headers={"Cookie": cookie}).status_code == 200
    anonymous = ts.client.simulate_get("/admin/users")
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login?next=%2Fadmin%2Fusers"
    _, admin_cookie, _, _ = signed_in(ts)
    assert 'href="/admin"' in ts.client.simulate_get("/", headers={"Cookie": admin_cookie}).text
    for path in ("/admin", "/admin/repositories", "/admin/repositories/new", "/admin/repositories/new/raw/hosted",
                 "/admin/repositories/edit/raw-hosted", "/admin/repositories/delete/raw-hosted", "/admin/users",
                 "/admin/users/dev", "/admin/users/new", "/admin/roles", "/admin/roles/nx-deployer",
                 "/admin/roles/new", "/admin/anonymous", "/admin/blobstores", "/admin/system", "/admin/audit",
                 "/admin/selectors", "/admin/selectors/new", "/admin/cleanup", "/admin/cleanup/new", "/admin/tasks",
                 "/admin/tasks/new", "/admin/realms", "/admin/ldap", "/admin/ldap/new",
                 "/admin/user-tokens"):
        assert ts.client.simulate_get(path, headers={"Cookie": admin_cookie}).status_code == 200, path


def test_a_password_change_ends_the_users_other_sessions(ts):
    _, first, _, _ = signed_in(ts, "dev", "dev-pw")
    _, second, token, _ = signed_in(ts, "dev", "dev-pw")
    changed = ts.client.simulate_put(f"{V1}/security/users/dev/change-password", body="new-dev-pw",
                                     headers={"Cookie": second, CSRF_TOKEN: token, "Content-Type": "text/plain"})
    assert changed.status_code == 204
    assert "Signed in" not in ts.client.simulate_get("/", headers={"Cookie": first}).text
    assert "Signed in as <b>dev</b>" in ts.client.simulate_get("/", headers={"Cookie": second}).text
    _, admin_cookie, admin_token, _ = signed_in(ts)
    reset = ts.client.simulate_put(f"{V1}/security/users/dev/change-password", body="third-pw",
                                   headers={"Cookie": admin_cookie, CSRF_TOKEN: admin_token,
                                            "Content-Type": "text/plain"})
    assert reset.status_code == 204
    assert "Signed in" not in ts.client.simulate_get("/", headers={"Cookie": second}).text
    assert "Signed in as <b>admin</b>" in ts.client.simulate_get("/", headers={"Cookie": admin_cookie}).text


@pytest.mark.parametrize("trusted,secure", [("127.0.0.1", True), ("192.0.2.1", False)])
def test_secure_cookie_behind_a_trusted_reverse_proxy_only(stowage_factory, live_server_factory, trusted, secure):
    """Through waitress: X-Forwarded-Proto: https from the trusted proxy makes the cookie Secure; from any
    other peer the header is ignored."""
    import urllib3

    ts = stowage_factory(trusted_proxy=trusted)
    server = live_server_factory(ts)
    forwarded = {"X-Forwarded-Proto": "https"}
    page = urllib3.request("GET", f"{server.url}/login", headers=forwarded)
    csrf_cookie = re.search(rf"{CSRF_TOKEN}=([^;]+)", page.headers["Set-Cookie"]).group(1)
    response = urllib3.request(
        "POST", f"{server.url}/login", redirect=False,
        body=f"username=admin&password={ts.admin_password}&{CSRF_TOKEN}={csrf_cookie}",
        headers={**forwarded, "Content-Type": FORM, "Cookie": f"{CSRF_TOKEN}={csrf_cookie}"})
    assert response.status == 303
    session_cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith(SESSION_COOKIE))
    assert ("Secure" in session_cookie) is secure
    assert "HttpOnly" in session_cookie and "SameSite=Strict" in session_cookie


def test_sign_in_is_throttled_like_basic_credentials(ts):
    page = ts.client.simulate_get("/login")
    csrf_cookie = page.cookies[CSRF_TOKEN].value
    statuses = []
    for _ in range(8):
        response = ts.client.simulate_post(
            "/login", body=f"username=dev&password=wrong&{CSRF_TOKEN}={csrf_cookie}",
            headers={"Content-Type": FORM, "Cookie": f"{CSRF_TOKEN}={csrf_cookie}"})
        statuses.append(response.status_code)
    assert statuses[0] == 401 and statuses[-1] == 429
    assert "too many failed sign-ins" in response.text and response.headers["retry-after"]
    # The right password is refused too while throttled, and no session starts.
    right = ts.client.simulate_post(
        "/login", body=f"username=dev&password=dev-pw&{CSRF_TOKEN}={csrf_cookie}",
        headers={"Content-Type": FORM, "Cookie": f"{CSRF_TOKEN}={csrf_cookie}"})
    assert right.status_code == 429 and SESSION_COOKIE not in right.cookies


def test_an_early_refusal_leaves_requests_with_cookies_to_the_ordinary_path(ts):
    """The server refuses an unauthenticated upload before reading its body only when that is certain; a
    browser's upload with a session cookie is not (the session may authorise it)."""
    ts.stowage.security.set_anonymous_settings(False)
    early = ts.app.early_auth
    path = f"{V1}/components"
    assert early.refuses("POST", path, f"{path}?repository=raw-hosted", {})
    assert not early.refuses("POST", path, f"{path}?repository=raw-hosted", {"COOKIE": f"{SESSION_COOKIE}=x"})
    _, cookie, token, _ = signed_in(ts, "dev", "dev-pw")
    body = (b'--b\r\nContent-Disposition: form-data; name="raw.asset1"; filename="f.txt"\r\n\r\nhello\r\n'
            b'--b\r\nContent-Disposition: form-data; name="raw.directory"\r\n\r\nup\r\n--b--\r\n')
    uploaded = ts.client.simulate_post(path, params={"repository": "raw-hosted"}, body=body,
                                       headers={"Cookie": cookie, CSRF_TOKEN: token,
                                                "Content-Type": "multipart/form-data; boundary=b"})
    assert uploaded.status_code == 204, uploaded.text
    assert ts.stowage.catalog.get_asset("raw-hosted", "up/f.txt") is not None
