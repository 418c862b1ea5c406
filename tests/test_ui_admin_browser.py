"""The web UI's sign-in, administration and upload pages in real Chromium (selenium + chromedriver), with
real clients (curl, twine) on the other side of what the forms did.

``STOWAGE_UI_SCREENSHOTS=docs/img`` also saves the screenshots docs/ui.md shows (1280x800).
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import urllib3

from stowage.http.csrf import CSRF_TOKEN
from stowage.http.session import SESSION_COOKIE
from test_ui_browser import browser, wait_for  # noqa: F401  (the chromium fixture; skips where none)

from selenium.common.exceptions import NoSuchElementException, WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402

SHOTS = os.environ.get("STOWAGE_UI_SCREENSHOTS")
V1 = "/service/rest/v1"


def shot(driver, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SHOTS) / f"ui-{name}.png"))


def make_wheel(directory: Path, name: str, version: str) -> Path:
    """A minimal pure-Python wheel twine accepts (METADATA, WHEEL, RECORD)."""
    info = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": b"", f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\n"
             f"Version: {version}\n\n".encode(),
             f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    lines = [f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},{len(d)}"
             for p, d in files.items()]
    files[f"{info}/RECORD"] = ("\n".join(lines + [f"{info}/RECORD,,"]) + "\n").encode()
    path = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in files.items():
            archive.writestr(member, data)
    return path


@pytest.fixture
def live(stowage_factory, live_server_factory, fault_upstream):
    ts = stowage_factory()
    return ts, live_server_factory(ts), fault_upstream


def mark_page(driver) -> None:
    """Mark the current document, so that :func:`wait_new_page` can tell when another one replaced it."""
    driver.execute_script("document.documentElement.setAttribute('data-old-page', '1');")


def wait_new_page(driver) -> None:
    """Wait until the marked document is gone and the new one has loaded (a form whose next page is the
    same URL reloads it through the script; acting before that would act on the old page)."""
    def loaded(d):
        try:
            return d.execute_script("return document.readyState === 'complete' && "
                                    "!document.documentElement.hasAttribute('data-old-page');")
        except WebDriverException:  # the document is being replaced
            return False
    wait_for(driver, loaded)


def fill(driver, name: str, value: str) -> None:
    field = driver.find_element(By.NAME, name)
    field.clear()
    field.send_keys(value)


def submit(driver) -> None:
    driver.find_element(By.CSS_SELECTOR, "form.rest button[type=submit]").click()


def sign_in(driver, url: str, user: str, password: str, next_path: str = "/") -> None:
    driver.get(f"{url}/login?next={next_path}")
    fill(driver, "username", user)
    fill(driver, "password", password)
    driver.find_element(By.CSS_SELECTOR, "form.signin button[type=submit]").click()
    wait_for(driver, lambda d: "/login" not in d.current_url)


def create_repository(driver, url: str, format_name: str, type_name: str, name: str, **fields: str) -> None:
    driver.get(f"{url}/admin/repositories/new/{format_name}/{type_name}")
    fill(driver, "name", name)
    for field, value in fields.items():
        fill(driver, field, value)
    submit(driver)
    wait_for(driver, expected_conditions.url_to_be(f"{url}/admin/repositories"))


def test_an_administrator_runs_the_repository_manager_from_the_browser(live, browser, tmp_path):  # noqa: F811
    ts, server, upstream = live
    url = server.url
    browser.set_window_size(1280, 800)
    browser.get(f"{url}/login?next=/admin")
    shot(browser, "sign-in")
    sign_in(browser, url, "admin", ts.admin_password, "/admin")
    assert browser.title == "Administration - Stowage"

    # Repositories through the forms: raw hosted, pypi hosted, proxy and an ordered group.
    browser.get(f"{url}/admin/repositories/new")
    browser.find_element(By.LINK_TEXT, "raw (hosted)").click()
    wait_for(browser, expected_conditions.title_is("Create raw (hosted) repository - Stowage"))
    fill(browser, "name", "ui-raw")
    submit(browser)
    wait_for(browser, expected_conditions.url_to_be(f"{url}/admin/repositories"))
    create_repository(browser, url, "pypi", "hosted", "pypi-hosted")
    browser.get(f"{url}/admin/repositories/new/pypi/proxy")
    fill(browser, "name", "pypi-proxy")
    fill(browser, "proxy.remoteUrl", upstream.url + "/simple/")
    fill(browser, "proxy.metadataMaxAge", "30")
    shot(browser, "repository-create")
    submit(browser)
    wait_for(browser, expected_conditions.url_to_be(f"{url}/admin/repositories"))
    # The server's validation error appears in the form; nothing is created.
    browser.get(f"{url}/admin/repositories/new/pypi/group")
    fill(browser, "name", "pypi-group")
    fill(browser, "group.memberNames", "pypi-hosted\nno-such-repo")
    submit(browser)
    error = wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".form-error").text)
    assert "no-such-repo" in error
    assert "pypi-group" not in [r.name for r in ts.stowage.repositories()]
    fill(browser, "group.memberNames", "pypi-hosted\npypi-proxy")
    submit(browser)
    wait_for(browser, expected_conditions.url_to_be(f"{url}/admin/repositories"))
    shot(browser, "repositories")
    browser.get(f"{url}/")
    shot(browser, "home")
    created = {r.name: r for r in ts.stowage.repositories()}
    assert created["ui-raw"].format_name == "raw" and created["ui-raw"].type.value == "hosted"
    assert created["pypi-proxy"].config.proxy.remote_url == upstream.url + "/simple/"
    assert created["pypi-proxy"].config.proxy.metadata_max_age == 30
    assert created["pypi-group"].config.group.member_names == ("pypi-hosted", "pypi-proxy")

    # Upload through the upload page, download with curl.
    payload = tmp_path / "notes.txt"
    payload.write_bytes(b"release notes\n" * 100)
    browser.get(f"{url}/upload/ui-raw")
    fill(browser, "raw.directory", "docs/1.0")
    browser.find_element(By.NAME, "raw.asset1").send_keys(str(payload))
    shot(browser, "upload")
    submit(browser)
    wait_for(browser, expected_conditions.title_is("ui-raw - Stowage"))
    downloaded = subprocess.run(["curl", "-sSf", "-u", f"admin:{ts.admin_password}",
                                 f"{url}/repository/ui-raw/docs/1.0/notes.txt"], capture_output=True, check=True)
    assert downloaded.stdout == payload.read_bytes()

    # A file the format refuses: the server's reason shows in the form, nothing is stored.
    bogus = tmp_path / "not_a-1.0-py3-none-any.whl"
    bogus.write_bytes(b"this is not a zip file")
    browser.get(f"{url}/upload/pypi-hosted")
    browser.find_element(By.NAME, "pypi.asset").send_keys(str(bogus))
    submit(browser)
    refusal = wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".form-error").text)
    assert "wheel" in refusal.lower() or "zip" in refusal.lower(), refusal
    assert ts.stowage.catalog.list_components("pypi-hosted").items == []

    # twine uploads; the component shows in browse and is deleted from there.
    wheel = make_wheel(tmp_path, "ui_demo", "1.0")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWINE_", "HTTP_PROXY", "http_proxy"))}
    subprocess.run([str(Path(sys.executable).parent / "twine"), "upload", "--non-interactive",
                    "--disable-progress-bar", "--repository-url", f"{url}/repository/pypi-hosted/", "-u", "admin",
                    "-p", ts.admin_password, str(wheel)], env=env, check=True, capture_output=True, timeout=120)
    browser.get(f"{url}/service/rest/repository/browse/pypi-hosted/")
    row = browser.find_element(By.XPATH, "//table[@class='components']//tr[td[1][normalize-space()='ui-demo']]")
    assert "1.0" in row.text and "ui_demo-1.0-py3-none-any.whl" in row.text
    shot(browser, "browse")
    row.find_element(By.CSS_SELECTOR, "button.danger").click()
    alert = wait_for(browser, expected_conditions.alert_is_present())
    assert "ui-demo 1.0" in alert.text and "ui_demo-1.0-py3-none-any.whl" in alert.text
    alert.accept()
    wait_for(browser, lambda d: "No components yet" in d.page_source)
    assert ts.stowage.catalog.list_components("pypi-hosted").items == []

    # A role and a user through the forms.
    browser.get(f"{url}/admin/roles/new")
    fill(browser, "id", "ui-readers")
    fill(browser, "description", "reads ui-raw")
    # A defined privilege is a checkbox; a wildcard goes in the text box; both fill "privileges".
    browser.find_element(By.CSS_SELECTOR, "input[name=privileges][value=nx-repository-view-raw-ui-raw-read]").click()
    browser.find_element(By.CSS_SELECTOR, "textarea[name=privileges]").send_keys("nx-repository-view-raw-ui-*-browse")
    submit(browser)
    wait_for(browser, expected_conditions.url_to_be(f"{url}/admin/roles"))
    browser.get(f"{url}/admin/users/new")
    fill(browser, "userId", "carol")
    fill(browser, "firstName", "Carol")
    fill(browser, "password", "carol-password-1")
    browser.find_element(By.CSS_SELECTOR, "input[name=roles][value=ui-readers]").click()
    submit(browser)
    wait_for(browser, expected_conditions.url_to_be(f"{url}/admin/users"))
    shot(browser, "users")
    carol = ts.stowage.security.get_user("carol")
    assert carol.roles == ("ui-readers",) and carol.first_name == "Carol"
    assert ts.stowage.security.get_role("ui-readers")["privileges"] == [
        "nx-repository-view-raw-ui-raw-read", "nx-repository-view-raw-ui-*-browse"]
    # Edit (a whole-object PUT: every field the REST API requires is in the form) and reset the password.
    browser.get(f"{url}/admin/users/carol")
    fill(browser, "lastName", "Smith")
    browser.find_element(By.CSS_SELECTOR, "form.rest button[type=submit]").click()
    wait_for(browser, expected_conditions.url_to_be(f"{url}/admin/users"))
    assert ts.stowage.security.get_user("carol").last_name == "Smith"
    assert ts.stowage.security.get_user("carol").roles == ("ui-readers",)
    browser.get(f"{url}/admin/users/carol")
    reset = browser.find_elements(By.CSS_SELECTOR, "form.rest")[1]
    reset.find_element(By.NAME, "password").send_keys("carol-password-2")
    reset.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(browser, lambda d: "Password changed." in reset.text)
    browser.get(f"{url}/admin/audit?user=admin")
    assert "carol" in browser.find_element(By.CSS_SELECTOR, "table").text
    shot(browser, "audit")
    browser.get(f"{url}/admin/system")
    assert "Plugins loaded" in browser.page_source and "stowage-raw" in browser.page_source
    shot(browser, "system")

    # Without the session's token, nothing changes: a script's fetch and a form stripped of its field.
    browser.get(f"{url}/admin/anonymous")
    status = browser.execute_async_script(
        "var done = arguments[0]; fetch('/service/rest/v1/security/anonymous', {method: 'PUT',"
        " headers: {'Content-Type': 'application/json'}, body: JSON.stringify({enabled: false})})"
        ".then(function (r) { done(r.status); });")
    assert status == 403 and ts.stowage.security.anonymous_settings()["enabled"] is True
    browser.execute_script(f"document.querySelector('form.signout input[name=\"{CSRF_TOKEN}\"]').remove();")
    browser.find_element(By.CSS_SELECTOR, "form.signout button").click()
    wait_for(browser, lambda d: "cross-site request forgery" in d.page_source)
    session = browser.get_cookie(SESSION_COOKIE)
    assert session and session["httpOnly"] and session["sameSite"] == "Strict"
    cookie = {"Cookie": f"{SESSION_COOKIE}={session['value']}"}
    assert urllib3.request("GET", f"{url}/admin", headers=cookie, redirect=False).status == 200

    # Sign out: the same cookie is worthless from then on.
    browser.get(f"{url}/")
    browser.find_element(By.CSS_SELECTOR, "form.signout button").click()
    wait_for(browser, expected_conditions.title_is("Sign in - Stowage"))
    replay = urllib3.request("GET", f"{url}/admin", headers=cookie, redirect=False)
    assert replay.status == 303 and "/login" in replay.headers["Location"]
    assert urllib3.request("GET", f"{url}{V1}/security/users", headers=cookie).status == 401

    # The new user signs in, reads what the role grants, sees no administration and gets 403 there.
    sign_in(browser, url, "carol", "carol-password-2")
    assert "Signed in as carol" in browser.find_element(By.CSS_SELECTOR, "header .account").text
    with pytest.raises(NoSuchElementException):
        browser.find_element(By.LINK_TEXT, "Administration")
    names = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "table.repositories tbody td:first-child a")]
    assert "ui-raw" in names
    for path in ("/admin", "/admin/repositories", "/admin/users/new", "/admin/system"):
        browser.get(f"{url}{path}")
        assert browser.title.startswith("403"), path


def page_overflow(driver) -> int:
    """How many pixels the page is wider than the viewport (0: no horizontal scroll of the page)."""
    return driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth;")


def test_search_results_fit_the_page_at_1280_px_and_on_a_phone(stowage_factory, live_server_factory, browser):  # noqa: F811
    ts = stowage_factory()
    ts.create_repository(name="raw-hosted-with-a-long-name", format="raw", type="hosted")
    server = live_server_factory(ts)
    for i in range(5):
        path = f"releases/2026/very-long-directory-name-{i}/another-level/tool-with-long-name-{i}.0.0-linux-x86_64.tar.gz"
        response = urllib3.request("PUT", f"{server.url}/repository/raw-hosted-with-a-long-name/{path}",
                                   body=b"x" * (1000 * i + 1), headers=ts.admin)
        assert response.status == 201
    for width, height, mobile in ((1280, 800, False), (390, 844, True)):
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                                                                        "deviceScaleFactor": 1, "mobile": mobile})
        browser.get(f"{server.url}/search?q=tool-with-long-name")
        rows = browser.find_elements(By.CSS_SELECTOR, "table.results tbody tr")
        assert len(rows) == 5
        assert page_overflow(browser) <= 0, (width, page_overflow(browser))
        # Every column, the SHA-256 included, is inside the viewport.
        right = browser.execute_script(
            "return Math.max.apply(null, Array.from(document.querySelectorAll('table.results td'))"
            ".map(function (td) { return td.getBoundingClientRect().right; }));")
        assert right <= width
        shot(browser, "search" if width == 1280 else "search-phone")
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_cleanup_policy_with_preview_and_a_scheduled_task_run_from_the_browser(
        stowage_factory, live_server_factory, browser):  # noqa: F811
    ts = stowage_factory()
    ts.create_repository(name="raw-files", format="raw", type="hosted")
    server = live_server_factory(ts)
    url = server.url
    for path in ("logs/a.txt", "logs/b.txt", "keep.bin"):
        assert urllib3.request("PUT", f"{url}/repository/raw-files/{path}", body=b"data",
                               headers=ts.admin).status == 201
    browser.set_window_size(1280, 800)
    # With the keyboard only: the user name field has focus, Tab moves on, Enter signs in.
    browser.get(f"{url}/login?next=/admin/cleanup/new")
    active = browser.switch_to.active_element
    assert active.get_attribute("name") == "username"
    active.send_keys("admin", Keys.TAB)
    focused = browser.switch_to.active_element
    assert focused.get_attribute("name") == "password"
    assert browser.execute_script("return getComputedStyle(document.activeElement).outlineStyle") == "solid"
    focused.send_keys(ts.admin_password, Keys.ENTER)
    wait_for(browser, expected_conditions.title_is("Create cleanup policy - Stowage"))
    fill(browser, "name", "txt-files")
    browser.find_element(By.CSS_SELECTOR, "select[name=format] option[value=raw]").click()
    fill(browser, "criteriaAssetRegex", r".*\.txt")
    browser.find_element(By.ID, "preview-button").click()
    result = wait_for(browser, lambda d: d.find_element(By.ID, "preview-result").text)
    assert "2 component(s) would be removed" in result and "logs/a.txt" in result and "keep.bin" not in result
    browser.execute_script("document.getElementById('preview-result').scrollIntoView({block: 'end'})")
    shot(browser, "cleanup-preview")
    assert ts.stowage.catalog.get_asset("raw-files", "logs/a.txt") is not None  # a preview removes nothing
    submit(browser)
    wait_for(browser, expected_conditions.url_to_be(f"{url}/admin/cleanup"))
    browser.get(f"{url}/admin/repositories/edit/raw-files")
    browser.find_element(By.CSS_SELECTOR, "input[name='cleanup.policyNames'][value=txt-files]").click()
    submit(browser)
    wait_for(browser, expected_conditions.url_to_be(f"{url}/admin/repositories"))
    assert ts.stowage.repository("raw-files").config.cleanup.policy_names == ("txt-files",)

    browser.get(f"{url}/admin/tasks/new/repository.cleanup")
    fill(browser, "name", "clean raw-files")
    browser.find_element(By.CSS_SELECTOR, "select[name='frequency.schedule'] option[value=weekly]").click()
    fill(browser, "frequency.recurringDays", "2 4")
    browser.find_element(By.CSS_SELECTOR, "select[name='properties.repositoryName'] option[value=raw-files]").click()
    submit(browser)
    wait_for(browser, expected_conditions.url_to_be(f"{url}/admin/tasks"))
    row = browser.find_element(By.XPATH, "//tr[td/a[normalize-space()='clean raw-files']]")
    assert "weekly" in row.text and "WAITING" in row.text
    row.find_element(By.CSS_SELECTOR, "button").click()

    def cleaned(_):
        return ts.stowage.catalog.get_asset("raw-files", "logs/a.txt") is None
    wait_for(browser, cleaned, timeout=20)
    assert ts.stowage.catalog.get_asset("raw-files", "keep.bin") is not None

    def reported(driver):
        driver.get(f"{url}/admin/tasks")
        row = driver.find_element(By.XPATH, "//tr[td/a[normalize-space()='clean raw-files']]")
        return "OK" in row.text and row
    row = wait_for(browser, reported, timeout=20)
    shot(browser, "tasks")


def test_realms_order_and_an_ldap_server_through_the_forms(stowage_factory, live_server_factory, browser):  # noqa: F811
    ts = stowage_factory()
    server = live_server_factory(ts)
    url = server.url
    browser.set_window_size(1280, 800)
    sign_in(browser, url, "admin", ts.admin_password, "/admin/realms")
    realms = browser.find_element(By.NAME, "realms")
    realms.clear()
    realms.send_keys("LdapRealm\nNexusAuthenticatingRealm\nUser-Token-Realm")
    mark_page(browser)
    submit(browser)
    wait_new_page(browser)  # saved, and the page loaded again
    wait_for(browser, lambda d: list(ts.stowage.security.realms.active()) == [
        "LdapRealm", "NexusAuthenticatingRealm", "User-Token-Realm"])
    # Refused by the server (the realm that signs the admin in must stay): the reason shows in the form.
    realms = browser.find_element(By.NAME, "realms")
    realms.clear()
    realms.send_keys("LdapRealm")
    submit(browser)
    error = wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".form-error").text)
    assert "NexusAuthenticatingRealm" in error

    browser.get(f"{url}/admin/ldap/new")
    for name, value in (("name", "corp"), ("host", "127.0.0.1"), ("searchBase", "dc=example,dc=org"),
                        ("authUsername", "cn=admin,dc=example,dc=org"), ("authPassword", "bind-pw"),
                        ("userBaseDn", "ou=people")):
        fill(browser, name, value)
    browser.find_element(By.NAME, "userSubtree").click()
    browser.execute_script("window.scrollTo(0, 0)")
    shot(browser, "ldap")
    submit(browser)
    wait_for(browser, expected_conditions.url_to_be(f"{url}/admin/ldap"))
    stored = urllib3.request("GET", f"{url}{V1}/security/ldap/corp", headers=ts.admin).json()
    assert stored["host"] == "127.0.0.1" and stored["port"] == 389 and stored["userSubtree"] is True
    assert stored["userBaseDn"] == "ou=people" and "authPassword" not in stored
    # User tokens: the administrator turns them on, creates their own on the account page (the pass code
    # is shown once) and signs in with it instead of the password.
    browser.get(f"{url}/admin/user-tokens")
    browser.find_element(By.NAME, "enabled").click()
    mark_page(browser)
    submit(browser)
    wait_new_page(browser)  # saved, and the page loaded again
    assert ts.stowage.tokens.user_tokens.enabled
    browser.get(f"{url}/account")
    browser.find_element(By.CSS_SELECTOR, "form[data-result=token-result] button[type=submit]").click()
    result = wait_for(browser, lambda d: d.find_element(By.ID, "token-result").text)
    codes = dict(zip(*[iter(line for line in result.splitlines() if line.strip())] * 2))
    assert codes["userId"] == "admin" and codes["nameCode"] and codes["passCode"]
    shot(browser, "account")
    browser.find_element(By.CSS_SELECTOR, "form.signout button").click()
    wait_for(browser, expected_conditions.title_is("Sign in - Stowage"))
    sign_in(browser, url, codes["nameCode"], codes["passCode"])
    assert "Signed in as admin" in browser.find_element(By.CSS_SELECTOR, "header .account").text
