"""Issue 2 acceptance: the config file, the CLI, graceful shutdown, and installing core alone."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core_helpers import RAW_HOSTED, STOWAGE, curl, sha256_file, write_sparse_random

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([STOWAGE, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "STOWAGE_ADMIN_PASSWORD": "pw", **(env or {})})


@pytest.mark.parametrize("text, named", [
    ("[server]\nbogusKey = 1\n", "extra fields found (bogusKey) @ $.server"),
    ("[server]\nport = 'eighty'\n", "$.server.port"),
    ("mystery = 1\n", "unknown top-level key(s) mystery"),
    ("[[blobStores]]\nname = 'b'\npathh = 'x'\n", "extra fields found (pathh) @ $.blobStores[0]"),
    (RAW_HOSTED.replace('writePolicy = "ALLOW_ONCE"', 'writPolicy = "ALLOW"'),
     "extra fields found (writPolicy) @ $.repositories[0].storage"),
    (RAW_HOSTED + 'raw = { contentDispositon = "INLINE" }\n',
     "extra fields found (contentDispositon) @ $.repositories[0].raw"),
    (RAW_HOSTED + 'negativeCache = { timeToLiv = 5 }\n', "(timeToLiv) @ $.repositories[0].negativeCache"),
    (RAW_HOSTED.replace('"ALLOW_ONCE"', '"SOMETIMES"'), "$.repositories[0].storage.writePolicy"),
    ('[[repositories]]\nname = "p"\nformat = "raw"\ntype = "proxy"\n', "needs proxy.remoteUrl"),
])
def test_config_errors_name_the_key(tmp_path, text, named):
    config = tmp_path / "stowage.toml"
    config.write_text(text)
    result = run_cli("repositories", "--config", str(config), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 2, result.stdout
    assert named in result.stderr


def test_config_is_created_or_updated_at_start_and_cli_lists(serve_factory, tmp_path):
    data_dir = tmp_path / "data"
    server = serve_factory(RAW_HOSTED, data_dir=data_dir)
    auth = ("-u", f"admin:{server.password}")
    url = f"{server.url}/repository/raw-hosted-dev/f.txt"
    assert curl(*auth, "-X", "PUT", "--data-binary", "one", "-o", "/dev/null", "-w", "%{http_code}", url).stdout == "201"
    assert curl(*auth, "-X", "PUT", "--data-binary", "two", "-o", "/dev/null", "-w", "%{http_code}", url).stdout == "400"
    # a repository created at run time through the REST API
    created = curl(*auth, "-X", "POST", "-H", "Content-Type: application/json", "-o", "/dev/null", "-w", "%{http_code}",
                   "--data", json.dumps({"name": "made-by-rest", "online": True}),
                   f"{server.url}/service/rest/v1/repositories/raw/hosted")
    assert created.stdout == "201"
    assert server.stop() == 0

    updated = RAW_HOSTED.replace('"ALLOW_ONCE"', '"ALLOW"') + """
[[repositories]]
name = "raw-new"
format = "raw"
type = "hosted"
raw = { contentDisposition = "INLINE" }
"""
    server = serve_factory(updated, data_dir=data_dir)
    url = f"{server.url}/repository/raw-hosted-dev/f.txt"
    assert curl(url).stdout == "one"  # content kept across the update
    assert curl(*auth, "-X", "PUT", "--data-binary", "two", "-o", "/dev/null", "-w", "%{http_code}", url).stdout == "201"
    assert curl(url).stdout == "two"  # ALLOW now
    settings = json.loads(curl(*auth, f"{server.url}/service/rest/v1/repositories/raw/hosted/raw-new").stdout)
    assert settings["raw"] == {"contentDisposition": "INLINE"}
    assert server.stop() == 0

    listing = run_cli("repositories", "--config", str(server.config), "--data-dir", str(data_dir))
    assert listing.returncode == 0, listing.stderr
    rows = [line.split() for line in listing.stdout.splitlines()]
    assert rows == [["made-by-rest", "raw", "hosted"], ["raw-hosted-dev", "raw", "hosted"], ["raw-new", "raw", "hosted"]]

    plugins = run_cli("plugins")
    assert plugins.returncode == 0
    report = json.loads(plugins.stdout)
    assert "raw" in report["formats"] and report["failures"] == []
    assert "stowage.builtin.storage" in report["plugins"]


def test_environment_variables_configure_the_server(tmp_path):
    config = tmp_path / "env.toml"
    config.write_text(RAW_HOSTED)
    data_dir = tmp_path / "from-env"
    result = run_cli("repositories", env={"STOWAGE_CONFIG": str(config), "STOWAGE_DATA_DIR": str(data_dir)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["raw-hosted-dev", "raw", "hosted"]
    assert (data_dir / "db" / "catalog.sqlite").exists()


def test_no_config_file_serves_the_embedded_default(tmp_path):
    result = run_cli("repositories", "--data-dir", str(tmp_path / "plain"), env={"STOWAGE_ADMIN_PASSWORD": ""})
    assert result.returncode == 0 and result.stdout == ""
    assert (tmp_path / "plain" / "admin.password").read_text()
    assert (tmp_path / "plain" / "db" / "catalog.sqlite").exists()


@pytest.mark.slow
def test_sigterm_finishes_the_download_in_flight_and_exits_0(serve_factory, tmp_path):
    server = serve_factory()
    source = tmp_path / "f.bin"
    digest = write_sparse_random(source, 96 << 20, seed=5)
    url = f"{server.url}/repository/raw-hosted-dev/slow/f.bin"
    assert curl("-u", f"admin:{server.password}", "--upload-file", str(source), "-o", "/dev/null",
                "-w", "%{http_code}", url).stdout == "201"
    target = tmp_path / "down.bin"
    # about 2 s of transfer at 48 MiB/s: SIGTERM arrives in the middle
    download = subprocess.Popen(["curl", "-sS", "--limit-rate", "48M", "-o", str(target), "-w", "%{http_code}", url],
                                stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while (not target.exists() or target.stat().st_size < 8 << 20) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert 8 << 20 <= target.stat().st_size < 96 << 20  # well under way, far from done
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    refused = curl("-o", "/dev/null", "-w", "%{http_code}", "-m", "2", f"{server.url}/service/rest/v1/status", check=False)
    assert refused.stdout == "000"  # no new connections once stopping
    assert server.process.wait(30) == 0
    assert download.communicate(timeout=30)[0] == "200"
    assert sha256_file(target) == digest
    assert "finishing requests in progress" in server.log()


@pytest.mark.slow
def test_core_alone_then_raw(tmp_path):
    """`pip install ./` gives a server with no formats; installing plugins/raw adds raw, nothing else changes."""
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", "*.egg-info", "build",
                                                                  "__pycache__", "tests", "docs", "bench"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, str(source)], check=True, capture_output=True, timeout=300)
    stowage = str(venv / "bin" / "stowage")
    env = {"PATH": "/usr/bin:/bin", "STOWAGE_ADMIN_PASSWORD": "pw"}
    plugins = json.loads(subprocess.run([stowage, "plugins"], capture_output=True, text=True, check=True,
                                        env=env).stdout)
    assert plugins["formats"] == [] and plugins["failures"] == []

    from core_helpers import ServeProcess

    config = tmp_path / "cwiq.toml"
    config.write_text(RAW_HOSTED)
    server = ServeProcess(config, tmp_path / "data", stowage=stowage, env=env).start()
    try:
        report = json.loads(curl(f"{server.url}/-/plugins.json").stdout)
        assert report["formats"] == [] and report["failures"] == []
        assert curl("-o", "/dev/null", "-w", "%{http_code}", f"{server.url}/service/rest/v1/status").stdout == "200"
        assert curl("-o", "/dev/null", "-w", "%{http_code}",
                    f"{server.url}/service/rest/v1/status/writable").stdout == "200"
        # the raw repository of the file was skipped with a warning, not fatal
        assert "format 'raw' is not installed; skipped" in server.log()
        assert json.loads(curl(f"{server.url}/service/rest/v1/repositories").stdout) == []
    finally:
        assert server.stop() == 0

    subprocess.run([*pip, "--no-deps", str(source / "plugins" / "raw")], check=True, capture_output=True, timeout=300)
    server = ServeProcess(config, tmp_path / "data", stowage=stowage, env=env).start()
    try:
        assert json.loads(curl(f"{server.url}/-/plugins.json").stdout)["formats"] == ["raw"]
        url = f"{server.url}/repository/raw-hosted-dev/x.txt"
        assert curl("-u", "admin:pw", "-X", "PUT", "--data-binary", "raw!", "-o", "/dev/null", "-w", "%{http_code}",
                    url).stdout == "201"
        assert curl(url).stdout == "raw!"
    finally:
        assert server.stop() == 0
