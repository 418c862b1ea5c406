"""``stowage serve --workers 2``: every worker has the signing key from its first request (a token issued by
one verifies on the other), and sign-in failures count across workers."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import urllib3

from stowage.testing import free_port
from stowage.testing.harness import basic_auth

from test_rest_workers import wait_until_up, worker_pid

pytestmark = pytest.mark.slow


def fresh(method, url, **kwargs):
    """A request on a new connection (so that either worker may accept it), never retried."""
    return urllib3.PoolManager(maxsize=1, retries=False).request(method, url, **kwargs)


def test_tokens_and_throttling_across_workers(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "STOWAGE_ADMIN_PASSWORD": "workers-pw"}
    env.pop("STOWAGE_SECRET_KEY", None)
    process = subprocess.Popen([sys.executable, "-m", "stowage.cli", "serve", "--data-dir", str(tmp_path / "data"),
                                "--port", str(port), "--workers", "2"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_up(url, process)
        auth = basic_auth("admin", "workers-pw")
        pids = set()
        deadline = time.monotonic() + 30
        while len(pids) < 2 and time.monotonic() < deadline:
            with ThreadPoolExecutor(8) as pool:
                pids |= set(pool.map(lambda _: worker_pid(url, auth), range(16)))
        assert len(pids) == 2, pids

        def round_trip(_):
            token = fresh("GET", f"{url}/v2/token?service=stowage", headers=auth)
            assert token.status == 200, token.data
            bearer = {"Authorization": f"Bearer {token.json()['token']}"}
            return fresh("GET", f"{url}/v2/", headers=bearer).status

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(round_trip, range(32))) == {200}
        key = tmp_path / "data" / "secret.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600

        wrong = basic_auth("admin", "guess")
        statuses = [fresh("GET", f"{url}/service/rest/v1/security/users", headers=wrong).status for _ in range(5)]
        assert statuses == [401] * 5
        # whichever worker answers (the first wait is 1 s: two quick requests, likely one on each worker)
        assert [fresh("GET", f"{url}/service/rest/v1/security/users", headers=wrong).status
                for _ in range(2)] == [429, 429]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
