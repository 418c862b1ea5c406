"""The two admin-takeover attacks of issue #10, replayed in headless Chromium with a signed-in admin.

1. Stored XSS: a pusher stores HTML/SVG with a script (a Docker manifest declared ``text/html``; raw files
   in an ``INLINE`` repository); the admin opens it; the script tries to create an ``nx-admin`` user with
   the credentials the browser holds.
2. CSRF: a page on another loopback port makes the admin's browser post to the REST API (auto-submitting
   forms and ``fetch``).

Each test first proves the payload is a working attack: run in a document of Stowage's origin that has
no content policy (a REST JSON answer), it does create an administrator.
"""

from __future__ import annotations

import http.server
import io
import json
import threading
import time

import pytest
import urllib3

from test_ui_browser import browser, sign_in_with_the_form, wait_for  # noqa: F401  (the chromium fixture; skips where none)

from stowage.security import ADMIN_ROLE, User
from stowage.testing.harness import basic_auth

V1 = "/service/rest/v1"


def payload(origin: str, user_id: str) -> str:
    """The attacker's script: find a CSRF token when it can (an in-origin script can read the signed-in
    session's token from any UI page, or the cookie), post a new administrator with the browser's
    credentials, and report the status in the document title."""
    body = json.dumps({"userId": user_id, "firstName": "x", "lastName": "x", "emailAddress": "x@example.org",
                       "password": "owned-pw-1", "status": "active", "roles": [ADMIN_ROLE]})
    return (f"function attack(token) {{"
            f" var h = {{'Content-Type': 'application/json'}}; if (token) h['NX-ANTI-CSRF-TOKEN'] = token;"
            f" fetch('{origin}{V1}/security/users', {{method: 'POST', credentials: 'include', headers: h,"
            f" body: {json.dumps(body)}}}).then(function (r) {{ document.title = 'attack:' + r.status; }},"
            f" function (e) {{ document.title = 'attack:failed'; }}); }}"
            f"var c = document.cookie.match(/NX-ANTI-CSRF-TOKEN=([^;]+)/);"
            f"fetch('{origin}/', {{credentials: 'include'}}).then(function (r) {{ return r.text(); }})"
            f".then(function (html) {{ var m = html.match(/name=\"NX-ANTI-CSRF-TOKEN\" value=\"([^\"]+)\"/);"
            f" attack(m ? m[1] : c && c[1]); }}, function () {{ attack(c && c[1]); }});")


@pytest.fixture
def stowage(stowage_factory, live_server_factory):
    ts = stowage_factory()
    ts.create_repository(name="files", format="raw", type="hosted", raw={"contentDisposition": "INLINE"})
    ts.create_repository(name="docker-hosted", format="docker", type="hosted")
    # The attacker may push, nothing more.
    ts.stowage.security.save_user(User(user_id="pusher", roles=("nx-deployer",)), "pusher-pw")
    return ts, live_server_factory(ts)


@pytest.fixture
def signed_in(stowage, browser):  # noqa: F811
    ts, live = stowage
    browser.get(f"{live.url}/login?next=%2F")
    sign_in_with_the_form(browser, "admin", ts.admin_password)
    wait_for(browser, lambda d: d.title == "Repositories - Stowage")
    return ts, live, browser


def is_user(ts, user_id: str) -> bool:
    return ts.stowage.security.get_user(user_id) is not None


def prove_the_payload_works(ts, live, driver) -> None:
    """In a document of Stowage's origin without a content policy, the script creates an admin."""
    driver.get(f"{live.url}{V1}/status")
    driver.execute_script(payload(live.url, "control-admin"))
    wait_for(driver, lambda d: d.title.startswith("attack:"))
    assert driver.title == "attack:200" and is_user(ts, "control-admin")
    ts.stowage.security.delete_user("control-admin")


def sandbox_blocked(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser")
            if "sandboxed" in entry["message"] and "allow-scripts" in entry["message"]]


def test_stored_xss_through_docker_manifests_and_inline_raw_files(signed_in, attacker):
    ts, live, driver = signed_in
    prove_the_payload_works(ts, live, driver)
    pusher = basic_auth("pusher", "pusher-pw")
    script = payload(live.url, "xss-admin")
    html = f"<html><head><title>page</title></head><body><script>{script}</script></body></html>".encode()
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script><![CDATA[{script}]]>'
           f'</script><rect width="10" height="10"/></svg>').encode()

    # The reported attack: a manifest pushed as text/html is refused, nothing is stored.
    put = urllib3.request("PUT", f"{live.url}/v2/docker-hosted/evil/manifests/latest", body=html,
                          headers={**pusher, "Content-Type": "text/html"})
    assert put.status == 400 and b"MANIFEST_INVALID" in put.data
    # One stored before the fix (or by a hostile proxy remote) is served as a manifest type, never run.
    repo = ts.stowage.repository("docker-hosted")
    blob = repo.blob_store.store(io.BytesIO(html), length=len(html))
    repo.record("v2/evil/manifests/old", blob, content_type="text/html", attributes={"mediaType": "text/html"})

    # Raw INLINE: whatever type the pusher declares, the name decides; HTML downloads, SVG shows sandboxed.
    for name, body in (("evil.html", html), ("evil.svg", svg), ("evil.txt", html), ("evil", html)):
        put = urllib3.request("PUT", f"{live.url}/repository/files/{name}", body=body,
                              headers={**pusher, "Content-Type": "text/html"})
        assert put.status == 201, put.data

    driver.get_log("browser")  # drop earlier entries
    for url in (f"{live.url}/v2/docker-hosted/evil/manifests/old",
                f"{live.url}/repository/docker-hosted/v2/evil/manifests/old",
                f"{live.url}/repository/files/evil.html", f"{live.url}/repository/files/evil.txt",
                f"{live.url}/repository/files/evil", f"{live.url}/repository/files/evil.svg"):
        driver.get(url)
        time.sleep(1.0)  # time for a script to run, if one could
        assert not driver.title.startswith("attack:"), url
    # The SVG did render in the browser and its script was stopped by the sandbox (not missing).
    assert driver.current_url.endswith("evil.svg")
    assert driver.execute_script("return document.documentElement.localName") == "svg"
    assert sandbox_blocked(driver), driver.get_log("browser")
    # Framed by a page of another origin, the sandbox holds just the same.
    site = attacker({"/frame": f'<iframe src="{live.url}/repository/files/evil.svg"></iframe>'
                               f'<object data="{live.url}/repository/files/evil.svg"></object>'.encode()})
    driver.get(f"{site.url}/frame")
    time.sleep(1.5)  # the frames' scripts would have posted by now (checked below)
    driver.switch_to.frame(0)
    assert driver.execute_script("return document.documentElement.localName") == "svg"  # it did load
    driver.switch_to.default_content()
    assert not is_user(ts, "xss-admin")
    assert [u.user_id for u in ts.stowage.security.list_users() if ADMIN_ROLE in u.roles] == ["admin"]


class AttackerSite:
    """A page on another loopback port (another origin, the same site): the attacker's web server."""

    def __init__(self, pages: dict[str, bytes]):
        pages_ = pages

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                body = pages_.get(self.path.split("?")[0], b"not found")
                self.send_response(200 if self.path.split("?")[0] in pages_ else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def attacker():
    sites: list[AttackerSite] = []

    def factory(pages: dict[str, bytes]) -> AttackerSite:
        sites.append(AttackerSite(pages))
        return sites[-1]

    yield factory
    for site in sites:
        site.close()


def test_cross_site_forms_and_fetches_cannot_act_with_the_admins_credentials(signed_in, attacker):
    ts, live, driver = signed_in
    prove_the_payload_works(ts, live, driver)
    target = f"{live.url}{V1}/security/users"
    user = {"userId": "csrf-admin", "firstName": "x", "lastName": "x", "emailAddress": "x@example.org",
            "password": "owned-pw-1", "status": "active", "roles": [ADMIN_ROLE]}
    # text/plain forms: the classic way to post a JSON-looking body without a pre-flight.
    as_json = json.dumps(user)[:-1] + ', "pad": "'
    text_form = (f'<form id="f" method="POST" enctype="text/plain" action="{target}">'
                 f"<input name='{as_json}' value='\"}}'></form><script>f.submit()</script>").encode()
    url_form = (f'<form id="f" method="POST" action="{target}">'
                + "".join(f'<input name="{k}" value="{v if isinstance(v, str) else v[0]}">' for k, v in user.items())
                + "</form><script>f.submit()</script>").encode()
    multipart_form = (f'<form id="f" method="POST" enctype="multipart/form-data" '
                      f'action="{live.url}{V1}/components?repository=files">'
                      '<input type="hidden" name="raw.directory" value="planted">'
                      '<input type="hidden" name="raw.asset1.filename" value="x.txt">'
                      '</form><script>f.submit()</script>').encode()
    fetches = (f"<script>fetch('{target}', {{method: 'POST', mode: 'no-cors', credentials: 'include',"
               f" headers: {{'Content-Type': 'text/plain'}}, body: {json.dumps(json.dumps(user))}}});"
               f"fetch('{target}', {{method: 'POST', mode: 'no-cors', credentials: 'include',"
               f" body: new Blob([{json.dumps(json.dumps(user))}])}});"
               f"fetch('{live.url}/repository/files/planted.txt', {{method: 'PUT', mode: 'no-cors',"
               f" credentials: 'include', body: 'planted'}});"
               f"document.title = 'sent';</script>").encode()
    site = attacker({"/text": text_form, "/urlencoded": url_form, "/multipart": multipart_form, "/fetch": fetches})

    for page in ("/text", "/urlencoded", "/multipart"):
        driver.get(f"{site.url}{page}")
        # The form navigated the browser to Stowage, which refused it as a forgery (not for lack of
        # credentials: the browser sent the admin's).
        wait_for(driver, lambda d: d.current_url.startswith(live.url))
        assert "cross-site request forgery" in driver.page_source, page
    driver.get(f"{site.url}/fetch")
    wait_for(driver, lambda d: d.title == "sent")
    time.sleep(1.5)  # the fetches are answered by then
    assert not is_user(ts, "csrf-admin")
    assert ts.stowage.catalog.get_asset("files", "planted.txt") is None
    assert ts.stowage.catalog.get_asset("files", "planted/x.txt") is None
    # Stowage's own origin, with the cookie it handed out, still works (the payload reads the cookie).
    driver.get(f"{live.url}/")
    driver.get(f"{live.url}{V1}/status")
    driver.execute_script(payload(live.url, "own-page-admin"))
    wait_for(driver, lambda d: d.title.startswith("attack:"))
    assert driver.title == "attack:200" and is_user(ts, "own-page-admin")
