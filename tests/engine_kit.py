"""Shared set-up for the proxy and group engine tests (raw format, real servers, real upstream)."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import attrs
import urllib3

from stowage.testing import FaultUpstream, TestStowage

HTTP = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=60))


def raw_stack(ts: TestStowage, upstream: FaultUpstream | str, *, proxy: dict | None = None,
              http_client: dict | None = None, negative_cache: dict | None = None) -> None:
    """raw-hosted, raw-proxy -> upstream, raw-group = [raw-hosted, raw-proxy]."""
    remote = upstream if isinstance(upstream, str) else upstream.url
    ts.create_repository(name="raw-hosted", format="raw", type="hosted")
    extra: dict[str, Any] = {}
    if http_client is not None:
        extra["httpClient"] = http_client
    if negative_cache is not None:
        extra["negativeCache"] = negative_cache
    ts.create_repository(name="raw-proxy", format="raw", type="proxy",
                         proxy={"remoteUrl": remote, **(proxy or {})}, **extra)
    ts.create_repository(name="raw-group", format="raw", type="group",
                         group={"memberNames": ["raw-hosted", "raw-proxy"]})


def get(url: str, method: str = "GET", **kwargs: Any) -> urllib3.BaseHTTPResponse:
    return HTTP.request(method, url, **kwargs)


def age(ts: TestStowage, repository: str, path: str, seconds: float) -> None:
    """Pretend the cached copy of ``path`` was fetched ``seconds`` ago."""
    catalog = ts.stowage.catalog
    asset = catalog.get_asset(repository, path)
    assert asset is not None, f"{path} is not cached in {repository}"
    catalog.update_asset(attrs.evolve(asset, fetched_at=time.time() - seconds))


def curl(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", *args], capture_output=True, text=True, timeout=timeout)


class ServeProcess:
    """``stowage serve`` in a subprocess (its own interpreter, its own memory) on a free port."""

    def __init__(self, tmp_path: Any, config: str, *, name: str = "serve", threads: int = 16):
        import os
        import sys

        from stowage.testing import ADMIN_PASSWORD, free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config_path = tmp_path / f"{name}.toml"
        config_path.write_text(config)
        env = dict(os.environ, STOWAGE_ADMIN_PASSWORD=ADMIN_PASSWORD)
        self.log_path = tmp_path / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "stowage.cli", "--log-level", "WARNING", "serve", "--config", str(config_path),
             "--port", str(self.port), "--threads", str(threads),
             # one process: the memory tests read this process's RSS and the counts of upstream requests
             # assume one engine (worker processes are covered by tests/test_rest_workers.py)
             "--workers", "1"], stdout=self._log, stderr=subprocess.STDOUT,
            env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"stowage serve exited: {self.log_path.read_text()}")
            try:
                if HTTP.request("GET", f"{self.url}/service/rest/v1/status", timeout=1).status == 200:
                    return
            except urllib3.exceptions.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"stowage serve did not start: {self.log_path.read_text()}")

    def rss_bytes(self) -> int:
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def proxy_config(data_dir: Any, remote: str, *, name: str = "raw-proxy") -> str:
    return f'''
[server]
dataDir = "{data_dir}"

[[repositories]]
name = "{name}"
format = "raw"
type = "proxy"
proxy = {{ remoteUrl = "{remote}" }}
'''


def download_sha256(url: str, headers: dict | None = None) -> tuple[int, str, dict]:
    """GET ``url`` streaming; returns (status, sha256 of the body, response headers)."""
    import hashlib

    response = HTTP.request("GET", url, preload_content=False, headers=headers)
    digest = hashlib.sha256()
    try:
        for chunk in response.stream(1024 * 1024):
            digest.update(chunk)
    finally:
        response.release_conn()
    return response.status, digest.hexdigest(), dict(response.headers)
