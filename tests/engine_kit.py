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
