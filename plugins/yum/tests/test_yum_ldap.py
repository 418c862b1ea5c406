"""dnf reads and curl uploads as a directory user (a real slapd) whose group maps to a role; the user name and
password are in the ``.repo`` file, as a site would configure them."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from stowage.testing.slapd import map_group, use_directory
from stowage_yum.regeneration import pending_roots


@pytest.fixture(scope="module", autouse=True)
def _tools() -> None:
    missing = [tool for tool in ("dnf", "curl") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"missing {missing}: install the Debian packages in .ci/apt-packages.txt")


def dnf_repoquery(tmp_path: Path, baseurl: str, user: str, password: str) -> subprocess.CompletedProcess:
    repos = tmp_path / "repos.d"
    repos.mkdir(exist_ok=True)
    (repos / "stowage.repo").write_text(
        f"[stowage]\nname=Stowage\nbaseurl={baseurl}\nusername={user}\npassword={password}\n"
        "gpgcheck=0\nmetadata_expire=0\nskip_if_unavailable=0\n")
    shutil.rmtree(tmp_path / "dnf-cache", ignore_errors=True)
    command = ["dnf", "--quiet", "--assumeyes", f"--installroot={tmp_path / 'installroot'}", "--releasever=9",
               f"--setopt=reposdir={repos}", f"--setopt=cachedir={tmp_path / 'dnf-cache'}", "--repo=stowage",
               "repoquery", "--queryformat", "%{name}-%{version}\n"]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def curl_upload(url: str, user: str, password: str, path: Path) -> str:
    return subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-u", f"{user}:{password}",
                           "--upload-file", str(path), url], capture_output=True, text=True, timeout=60).stdout


def test_dnf_and_curl_as_a_directory_user(yum_app, live_server_factory, rpms, slapd, tmp_path):
    app = yum_app(delay=0.1, anonymous_access=False)
    map_group(app, "developers", ["nx-repository-view-yum-*-*"])
    use_directory(app, slapd)
    server = live_server_factory(app)
    hosted = f"{server.url}/repository/yum-hosted/"
    rpm = rpms["hello-1.0"]
    assert curl_upload(hosted + rpm.name, "alice", "wrong", rpm) == "401"
    assert curl_upload(hosted + rpm.name, "bob", "bob-ldap-pw", rpm) == "403"
    assert curl_upload(hosted + rpm.name, "alice", "alice-ldap-pw", rpm) == "201"
    deadline = time.monotonic() + 20
    while pending_roots(app.stowage.repository("yum-hosted")) and time.monotonic() < deadline:
        time.sleep(0.1)

    listed = dnf_repoquery(tmp_path, f"{server.url}/repository/yum-group/", "alice", "alice-ldap-pw")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["hello-1.0"]
    refused = dnf_repoquery(tmp_path, f"{server.url}/repository/yum-group/", "alice", "wrong")
    assert refused.returncode != 0 and "Cannot download repomd.xml" in refused.stderr
