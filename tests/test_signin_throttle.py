"""Issue 10 item 5: brute-force throttling per (user, address) and per address, shared by every process
over the catalog, that an attacker elsewhere cannot turn into a lock-out; and the sign-in log.

Client addresses are real: curl binds 127.0.0.2, 127.0.0.3... (all loopback) with ``--interface``.
"""

from __future__ import annotations

import logging
import subprocess
import time

import pytest

from stowage.security import User


@pytest.fixture
def server(stowage_factory, live_server_factory):
    ts = stowage_factory()
    ts.create_repository(name="raw-hosted", format="raw", type="hosted")
    # A first wait longer than the guard's 1 s, so that a busy test machine cannot outlast it between two
    # requests; the test of the growing wait sets its own.
    ts.stowage.signins.BASE_DELAY = 30.0
    return ts, live_server_factory(ts)


def attempt(live, user, password, address="127.0.0.1", path="/service/rest/v1/security/users"):
    out = subprocess.run(["curl", "-s", "--interface", address, "-u", f"{user}:{password}", "-D", "-", "-o",
                          "/dev/null", "-w", "%{http_code}", f"{live.url}{path}"],
                         capture_output=True, text=True, check=True).stdout
    headers, status = out[:-3], int(out[-3:])
    retry = next((line.split(":", 1)[1].strip() for line in headers.splitlines()
                  if line.lower().startswith("retry-after:")), None)
    return status, retry


def test_wrong_passwords_are_throttled_for_that_address_only(server):
    ts, live = server
    for _ in range(4):
        assert attempt(live, "admin", "guess", "127.0.0.2") == (401, None)
    assert attempt(live, "admin", "guess", "127.0.0.2")[0] == 401  # the 5th failure starts the wait
    status, retry = attempt(live, "admin", "guess", "127.0.0.2")
    assert status == 429 and retry is not None and 1 <= int(retry) <= 31
    # while it lasts, not even the right password is checked from that address
    assert attempt(live, "admin", ts.admin_password, "127.0.0.2")[0] == 429
    # the real admin, elsewhere, is not locked out
    assert attempt(live, "admin", ts.admin_password, "127.0.0.1") == (200, None)
    assert attempt(live, "admin", ts.admin_password, "127.0.0.4") == (200, None)


def test_the_wait_grows_and_a_success_clears_the_pair(server):
    ts, live = server
    ts.stowage.signins.BASE_DELAY = 2.0
    for _ in range(5):
        attempt(live, "admin", "guess", "127.0.0.5")
    first = int(attempt(live, "admin", "guess", "127.0.0.5")[1])
    time.sleep(first + 0.1)
    assert attempt(live, "admin", "guess", "127.0.0.5")[0] == 401  # 6th failure: twice the wait
    second = int(attempt(live, "admin", "guess", "127.0.0.5")[1])
    assert second > first
    time.sleep(second + 0.1)
    assert attempt(live, "admin", ts.admin_password, "127.0.0.5") == (200, None)
    for _ in range(4):  # counting starts again after a success
        assert attempt(live, "admin", "guess", "127.0.0.5")[0] == 401


def test_an_address_trying_many_users_is_throttled(server):
    ts, live = server
    statuses = [attempt(live, f"user{i}", "guess", "127.0.0.6")[0] for i in range(22)]
    assert statuses[:20] == [401] * 20 and statuses[-1] == 429
    assert attempt(live, "admin", ts.admin_password, "127.0.0.6")[0] == 429
    assert attempt(live, "admin", ts.admin_password, "127.0.0.1") == (200, None)


def test_failures_count_across_processes_sharing_the_catalog(stowage_factory, live_server_factory, tmp_path):
    """Two application objects over one data directory stand for two workers (or nodes)."""
    first = stowage_factory(data_dir=tmp_path / "shared")
    first.create_repository(name="raw-hosted", format="raw", type="hosted")
    second = stowage_factory(data_dir=tmp_path / "shared")
    first.stowage.signins.BASE_DELAY = second.stowage.signins.BASE_DELAY = 30.0
    live_a, live_b = live_server_factory(first), live_server_factory(second)
    for live in (live_a, live_b, live_a, live_b, live_a):
        assert attempt(live, "admin", "guess", "127.0.0.7")[0] == 401
    assert attempt(live_b, "admin", "guess", "127.0.0.7")[0] == 429
    assert attempt(live_a, "admin", "guess", "127.0.0.7")[0] == 429


def test_sign_ins_are_logged_without_passwords(server, caplog):
    ts, live = server
    ts.stowage.security.save_user(User(user_id="dev", roles=("nx-deployer",)), "dev-secret-pw")
    with caplog.at_level(logging.INFO, logger="stowage.security.signin"):
        attempt(live, "dev", "wrong-secret-pw", "127.0.0.8", "/repository/raw-hosted/x")
        for _ in range(3):  # one pip install = many requests; logged once
            attempt(live, "dev", "dev-secret-pw", "127.0.0.8", "/repository/raw-hosted/x")
    records = [r for r in caplog.records if r.name == "stowage.security.signin"]
    messages = [r.getMessage() for r in records]
    assert messages == [
        "sign-in failed: user=dev address=127.0.0.8 realm=basic result=failure",
        "sign-in: user=dev address=127.0.0.8 realm=NexusAuthenticatingRealm result=success"]
    assert records[0].levelno == logging.WARNING
    assert not any("secret-pw" in m for m in messages)


def test_stale_counters_are_forgotten(stowage_app):
    guard = stowage_app.stowage.signins
    guard.failed("admin", "192.0.2.1", realm="basic")
    guard.failed("someone", "192.0.2.2", realm="basic")
    assert guard.forget_stale() == 0
    assert guard.verdict("admin", "192.0.2.1").pair_on_record
    assert guard.forget_stale(now=time.time() + guard.FORGET_AFTER + 1) == 4  # two pairs, two addresses
    assert not guard.verdict("admin", "192.0.2.1").pair_on_record
