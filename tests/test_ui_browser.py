"""The web UI in a real browser: headless Debian chromium driven through chromedriver (selenium).

Skipped only where chromium is not installed and CI is not set; in CI (``.ci/apt-packages.txt`` installs
chromium and chromium-driver) these always run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

import pytest
import urllib3

from stowage.testing.harness import basic_auth

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

if not (CHROMIUM and CHROMEDRIVER) and not os.environ.get("CI"):
    pytest.skip("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)",
                allow_module_level=True)

from selenium import webdriver  # noqa: E402  (after the skip: selenium comes with the test requirements)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

PAYLOAD = hashlib.sha256(b"seed").digest() * 4000  # 128,000 bytes, not text


@pytest.fixture
def server(stowage_factory, live_server_factory):
    ts = stowage_factory()
    ts.create_repository(name="raw-hosted", format="raw", type="hosted")
    ts.create_repository(name="raw-secret", format="raw", type="hosted")
    live = live_server_factory(ts)
    for repository, path, body in (("raw-hosted", "builds/1.0/tool-1.0.tar.gz", PAYLOAD),
                                   ("raw-hosted", "builds/readme.txt", b"read me\n"),
                                   ("raw-secret", "keys/secret.txt", b"secret\n")):
        response = urllib3.request("PUT", f"{live.url}/repository/{repository}/{path}", body=body,
                                   headers=ts.admin)
        assert response.status == 201, response.data
    return ts, live


@pytest.fixture
def browser(tmp_path: Path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,900", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(20)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, condition, timeout=10):
    return WebDriverWait(driver, timeout).until(condition)


def console_errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_browse_download_search_in_chromium(server, browser, tmp_path):
    ts, live = server
    browser.get(f"{live.url}/")
    assert browser.title == "Repositories - Stowage"
    names = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "table.repositories tbody tr td:first-child a")]
    assert names == ["raw-hosted", "raw-secret"]  # anonymous may read everything by default
    # The stylesheet applied (strict CSP allows our own files): the header is dark.
    header = browser.find_element(By.TAG_NAME, "header")
    assert header.value_of_css_property("background-color") == "rgba(36, 41, 47, 1)"
    browser.save_screenshot(str(tmp_path / "welcome.png"))

    browser.find_element(By.LINK_TEXT, "raw-hosted").click()
    wait_for(browser, expected_conditions.title_is("raw-hosted - Stowage"))
    assert "curl -fu <user> --upload-file <file>" in browser.find_element(By.CSS_SELECTOR, "#usage pre").text
    browser.find_element(By.LINK_TEXT, "builds/").click()
    wait_for(browser, expected_conditions.title_is("raw-hosted/builds/ - Stowage"))
    browser.find_element(By.LINK_TEXT, "1.0/").click()
    wait_for(browser, expected_conditions.title_is("raw-hosted/builds/1.0/ - Stowage"))
    row = browser.find_element(By.CSS_SELECTOR, "table.listing tr.file")
    link = row.find_element(By.LINK_TEXT, "tool-1.0.tar.gz")
    assert link.get_attribute("href") == f"{live.url}/repository/raw-hosted/builds/1.0/tool-1.0.tar.gz"
    sha = row.find_element(By.CSS_SELECTOR, "span.sha").get_attribute("title")
    assert sha == hashlib.sha256(PAYLOAD).hexdigest()
    assert "125.0 KiB" in row.text
    browser.save_screenshot(str(tmp_path / "browse.png"))

    # The copy button runs our script (no CSP violation) and says so.
    button = row.find_element(By.CSS_SELECTOR, "button.copy")
    assert button.get_attribute("data-copy") == sha
    button.click()
    wait_for(browser, lambda d: button.text == "copied")

    link.click()
    target = browser.downloads / "tool-1.0.tar.gz"
    deadline = time.monotonic() + 20
    while not target.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert target.read_bytes() == PAYLOAD

    # Breadcrumbs lead back up.
    browser.find_element(By.CSS_SELECTOR, ".crumbs").find_element(By.LINK_TEXT, "builds").click()
    wait_for(browser, expected_conditions.title_is("raw-hosted/builds/ - Stowage"))

    box = browser.find_element(By.CSS_SELECTOR, "header input[name=q]")
    box.send_keys("tool-1.0")
    box.submit()
    wait_for(browser, expected_conditions.title_is("Search - Stowage"))
    results = browser.find_elements(By.CSS_SELECTOR, "table.results tbody tr")
    assert len(results) == 1
    found = results[0].find_element(By.LINK_TEXT, "builds/1.0/tool-1.0.tar.gz")
    assert found.get_attribute("href") == f"{live.url}/repository/raw-hosted/builds/1.0/tool-1.0.tar.gz"
    assert console_errors(browser) == []


def sign_in_with_the_form(driver, user: str, password: str) -> None:
    driver.find_element(By.ID, "username").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form.signin button[type=submit]").click()


def test_sign_in_shows_private_repositories(server, browser):
    ts, live = server
    ts.stowage.security.set_anonymous_settings(False)
    browser.get(f"{live.url}/")
    assert browser.find_elements(By.CSS_SELECTOR, "table.repositories") == []
    sign_in = browser.find_element(By.LINK_TEXT, "Sign in")
    assert sign_in.get_attribute("href") == f"{live.url}/login?next=%2F"
    sign_in.click()
    wait_for(browser, expected_conditions.title_is("Sign in - Stowage"))
    sign_in_with_the_form(browser, "admin", ts.admin_password)
    wait_for(browser, expected_conditions.title_is("Repositories - Stowage"))
    assert browser.current_url.endswith(f"127.0.0.1:{live.port}/")
    # The session cookie goes with every page: plain URLs now show what admin may read.
    browser.get(f"{live.url}/")
    names = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "table.repositories tbody tr td:first-child a")]
    assert names == ["raw-hosted", "raw-secret"]
    assert "Signed in as admin" in browser.find_element(By.CSS_SELECTOR, "header .account").text
    # The private browse page opens.
    browser.find_element(By.LINK_TEXT, "raw-secret").click()
    wait_for(browser, expected_conditions.title_is("raw-secret - Stowage"))
    assert browser.find_element(By.LINK_TEXT, "keys/")
    assert basic_auth("admin", ts.admin_password)["Authorization"] not in browser.page_source
