"""``stowage serve --workers 2`` with a directory: the ``[security]`` table reaches every worker, cached
sign-ins survive an outage in each, and switching the LDAP realm off reaches every worker within a second."""

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
from test_rest_workers import wait_until_up

ALICE = basic_auth("alice", "alice-ldap-pw")


def status_and_pid(url: str, headers: dict[str, str]) -> tuple[int, int | None]:
    # a fresh pool per call: a new connection, so any worker may accept it
    response = urllib3.PoolManager(maxsize=1).request("GET", f"{url}/service/metrics/prometheus", headers=headers,
                                                      retries=False, timeout=30)
    if response.status != 200:
        return response.status, None
    line = next(line for line in response.data.decode().splitlines() if line.startswith("stowage_worker_info{"))
    return 200, int(line.split('pid="')[1].split('"')[0])


@pytest.mark.slow
def test_workers_share_realm_switches_and_each_caches_sign_ins(tmp_path, slapd):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = tmp_path / "stowage.toml"
    config.write_text("[security]\nldapAuthCacheSeconds = 600\n")
    env = {**os.environ, "STOWAGE_ADMIN_PASSWORD": "workers-pw"}
    process = subprocess.Popen([sys.executable, "-m", "stowage.cli", "serve", "--config", str(config), "--data-dir",
                                str(tmp_path / "data"), "--port", str(port), "--workers", "2"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    admin = basic_auth("admin", "workers-pw")
    try:
        wait_until_up(url, process)
        role = urllib3.request("POST", f"{url}/service/rest/v1/security/roles", headers=admin,
                               json={"id": "developers", "name": "developers", "privileges": ["nx-metrics-all"]})
        assert role.status == 200, role.data
        created = urllib3.request("POST", f"{url}/service/rest/v1/security/ldap", headers=admin,
                                  json=slapd.server_settings())
        assert created.status == 201, created.data
        # Sign alice in on both workers (each caches her sign-in).
        pids: set[int] = set()
        deadline = time.monotonic() + 30
        while len(pids) < 2 and time.monotonic() < deadline:
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(lambda _: status_and_pid(url, ALICE), range(16)))
            assert {status for status, _ in answers} == {200}
            pids |= {pid for _, pid in answers}
        assert len(pids) == 2, pids

        slapd.stop()
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: status_and_pid(url, ALICE), range(24)))
        assert {status for status, _ in answers} == {200}  # every worker signs her in from its cache
        bob = status_and_pid(url, basic_auth("bob", "bob-ldap-pw"))[0]
        assert bob == 401  # never signed in: refused, not a 500

        switched = urllib3.request("PUT", f"{url}/service/rest/v1/security/realms/active", headers=admin,
                                   json=["NexusAuthenticatingRealm", "NpmToken", "DockerToken"])
        assert switched.status == 204
        time.sleep(1.2)
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: status_and_pid(url, ALICE), range(24)))
        # refused everywhere (401; 429 once sign-in throttling counts the failures)
        statuses = {status for status, _ in answers}
        assert statuses <= {401, 429} and 401 in statuses
        assert status_and_pid(url, admin)[0] == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
