"""The per-process caches on the request path stay correct across worker processes (issue 16).

Each worker keeps repository configurations, permission decisions and the anonymous-access setting for
up to a second (``Stowage.CONFIG_RECHECK_SECONDS``, ``Security.DECISION_TTL``); assets are read from the
catalog on every request. A change made through one worker must show on every worker within that bound
(plus scheduling slack on a loaded machine), and a stored file's new content at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import urllib3

from stowage.testing import free_port
from stowage.testing.harness import basic_auth
from test_rest_workers import wait_until_up, worker_pid

PASSWORD = "cache-pw"
#: the caches' one-second bound, plus slack for a machine shared with other test runs.
BOUND_SECONDS = 1.0 + 2.0


def _answers(url: str, path: str, headers: dict[str, str] | None = None) -> set[tuple[int, bytes]]:
    """(status, body) of 24 requests on fresh connections, so that every worker answers some."""
    def one(_: int) -> tuple[int, bytes]:
        response = urllib3.PoolManager(maxsize=1).request("GET", url + path, headers=headers or {}, retries=False)
        return response.status, response.data

    with ThreadPoolExecutor(8) as pool:
        return set(pool.map(one, range(24)))


def _until(url: str, path: str, expected: set[tuple[int, bytes]], headers: dict[str, str] | None = None) -> float:
    started = time.monotonic()
    while True:
        seen = _answers(url, path, headers)
        elapsed = time.monotonic() - started
        if seen == expected:
            return elapsed
        assert elapsed < BOUND_SECONDS, f"after {elapsed:.1f}s the workers still answer {seen}"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_change_on_one_worker_shows_on_every_worker(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    auth = basic_auth("admin", PASSWORD)
    process = subprocess.Popen([sys.executable, "-m", "stowage.cli", "--log-level", "WARNING", "serve",
                                "--data-dir", str(tmp_path / "data"), "--port", str(port), "--workers", "2"],
                               env={**os.environ, "STOWAGE_ADMIN_PASSWORD": PASSWORD},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_up(url, process)
        created = urllib3.request("POST", f"{url}/service/rest/v1/repositories/raw/hosted", headers=auth,
                                  json={"name": "raw", "online": True,
                                        "storage": {"blobStoreName": "default", "writePolicy": "ALLOW"}})
        assert created.status in (200, 201, 204), created.data
        pids: set[int] = set()
        deadline = time.monotonic() + 30  # the second worker may still be starting
        while len(pids) < 2 and time.monotonic() < deadline:
            with ThreadPoolExecutor(8) as pool:
                pids |= set(pool.map(lambda _: worker_pid(url, auth), range(24)))
        assert len(pids) == 2, pids

        # Warm every worker's caches (repository, anonymous decision) with hot GETs.
        assert urllib3.request("PUT", f"{url}/repository/raw/f.txt", body=b"one", headers=auth).status == 201
        assert _until(url, "/repository/raw/f.txt", {(200, b"one")}) < BOUND_SECONDS

        # New content of a stored file: every worker serves it at once (assets are not cached).
        assert urllib3.request("PUT", f"{url}/repository/raw/f.txt", body=b"two", headers=auth).status in (200, 201)
        assert _answers(url, "/repository/raw/f.txt") == {(200, b"two")}

        # Anonymous access off (a security setting every worker caches for a second): refused everywhere.
        changed = urllib3.request("PUT", f"{url}/service/rest/v1/security/anonymous", headers=auth,
                                  json={"enabled": False, "userId": "anonymous",
                                        "realmName": "NexusAuthorizingRealm"})
        assert changed.status == 200, changed.data
        statuses = {status for status, _ in _answers_after(url, "/repository/raw/f.txt", 401)}
        assert statuses == {401}
        assert _answers(url, "/repository/raw/f.txt", auth) == {(200, b"two")}

        # The repository taken offline (a configuration every worker caches for a second).
        settings = urllib3.request("GET", f"{url}/service/rest/v1/repositories/raw/hosted/raw", headers=auth).json()
        offline = urllib3.request("PUT", f"{url}/service/rest/v1/repositories/raw/hosted/raw", headers=auth,
                                  json={**settings, "online": False})  # a PUT takes the whole object
        assert offline.status in (200, 204), offline.data
        started = time.monotonic()
        while {status for status, _ in _answers(url, "/repository/raw/f.txt", auth)} != {503}:
            assert time.monotonic() - started < BOUND_SECONDS, "a worker still serves the offline repository"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


def _answers_after(url: str, path: str, status: int) -> set[tuple[int, bytes]]:
    """The answers once every worker gives ``status`` (failing after :data:`BOUND_SECONDS`)."""
    started = time.monotonic()
    while True:
        seen = _answers(url, path)
        if {s for s, _ in seen} == {status}:
            return seen
        assert time.monotonic() - started < BOUND_SECONDS, f"the workers still answer {seen}"
        time.sleep(0.05)
