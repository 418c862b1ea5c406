"""The production examples work as shipped: the nginx TLS front in front of a real server, the systemd units
accepted by systemd-analyze."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import urllib3

from stowage.testing import free_port

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
RAW = [{"name": "raw-hosted", "format": "raw", "type": "hosted"}]


@pytest.fixture
def nginx_front(tmp_path, stowage_factory, live_server_factory):
    if shutil.which("nginx") is None:
        pytest.fail("nginx is required (Debian package nginx, in .ci/apt-packages.txt)")
    ts = stowage_factory(repositories=RAW)
    live = live_server_factory(ts)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=repo.example.org", "-addext", "subjectAltName=DNS:repo.example.org", "-keyout", str(tmp_path / "tls.key"), "-out", str(tmp_path / "tls.crt")],
                   check=True, capture_output=True)
    https, http = free_port(), free_port()
    site = (EXAMPLES / "nginx-tls.conf").read_text()
    site = site.replace("/etc/nginx/tls/repo.example.org.crt", str(tmp_path / "tls.crt"))
    site = site.replace("/etc/nginx/tls/repo.example.org.key", str(tmp_path / "tls.key"))
    site = site.replace("127.0.0.1:8081", f"127.0.0.1:{live.port}")
    site = re.sub(r"listen \[::\]:\d+[^;]*;\n", "", site)
    site = site.replace("listen 443 ssl", f"listen 127.0.0.1:{https} ssl").replace("listen 80;", f"listen 127.0.0.1:{http};")
    (tmp_path / "logs").mkdir()
    (tmp_path / "nginx.conf").write_text(
        f"daemon off; pid {tmp_path}/nginx.pid; error_log {tmp_path}/logs/error.log;\n"
        f"events {{}}\nhttp {{ access_log off; client_body_temp_path {tmp_path}/body; proxy_temp_path {tmp_path}/proxy;\n"
        f"{site}\n}}\n")
    process = subprocess.Popen(["nginx", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            urllib3.request("GET", f"http://127.0.0.1:{http}/", redirect=False, retries=False)
            break
        except urllib3.exceptions.HTTPError:
            time.sleep(0.05)
    yield ts, https, http, tmp_path / "tls.crt"
    process.terminate()
    process.wait(timeout=10)


def test_nginx_tls_front_streams_uploads_and_tells_stowage_it_is_https(nginx_front):
    ts, https, http, certificate = nginx_front
    pool = urllib3.PoolManager(ca_certs=str(certificate), server_hostname="repo.example.org")
    redirect = urllib3.request("GET", f"http://127.0.0.1:{http}/x", headers={"Host": "repo.example.org"},
                               redirect=False)
    assert redirect.status == 301 and redirect.headers["Location"] == "https://repo.example.org/x"
    data = b"through TLS" * 1000
    base = f"https://127.0.0.1:{https}"
    headers = {**ts.admin, "Host": "repo.example.org"}
    assert pool.request("PUT", f"{base}/repository/raw-hosted/a/file.bin", body=data, headers=headers).status == 201
    got = pool.request("GET", f"{base}/repository/raw-hosted/a/file.bin", headers={"Host": "repo.example.org"})
    assert got.status == 200 and got.data == data
    assert got.headers["Strict-Transport-Security"] == "max-age=31536000"
    assets = pool.request("GET", f"{base}/service/rest/v1/assets?repository=raw-hosted", headers=headers).json()
    assert assets["items"][0]["downloadUrl"] == "https://repo.example.org/repository/raw-hosted/a/file.bin"


@pytest.mark.parametrize("unit", ["stowage.service", "stowage-backup.service", "stowage-backup.timer"])
def test_systemd_units_pass_systemd_analyze(tmp_path, unit):
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is required (Debian package systemd, in .ci/apt-packages.txt)")
    for name in ("stowage.service", "stowage-backup.service", "stowage-backup.timer"):
        text = (EXAMPLES / name).read_text().replace("/opt/stowage/bin/stowage", shutil.which("true"))
        (tmp_path / name).write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / unit)], capture_output=True,
                            text=True)
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if unit.split(".")[0] in line or "Unknown" in line or "failed" in line.lower()]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr


def test_the_service_runs_as_its_own_user_with_a_private_data_directory():
    unit = (EXAMPLES / "stowage.service").read_text()
    for line in ("User=stowage", "StateDirectory=stowage", "StateDirectoryMode=0700", "UMask=0077",
                 "NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=\n"):
        assert line in unit
