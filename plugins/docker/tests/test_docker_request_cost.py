"""What authenticating a docker request costs, and what it must still refuse (issue 16, slice docker-cost).

A hot pull with a bearer token reads nothing from the catalog to authenticate (counted in SQL statements,
exact, never timed): the token is checked before the sign-in throttle's counters, which only a failed
token reads, and its user is cached per security generation. What that must not weaken is tested here
too: a throttled address still gets 429 for any token that does not verify and for any password, and a
password change ends a token at once in the process that made it and promptly in another one.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from attrs import evolve

from stowage.security import User
from stowage.testing.harness import basic_auth
from test_docker_conformance import OCI_MANIFEST, image, push_manifest, reg  # noqa: F401 - reg: a fixture

ADDRESS = "127.0.0.9"


def _statements(stowage: Any, call: Any) -> list[str]:
    """The SQL statements ``call()`` runs on this thread's catalog connection."""
    catalog = stowage.catalog
    if not hasattr(catalog, "_conn"):
        pytest.skip("counts the SQLite catalog's statements (STOWAGE_TEST_CATALOG=postgresql)")
    statements: list[str] = []
    catalog._conn.set_trace_callback(statements.append)
    try:
        call()
    finally:
        catalog._conn.set_trace_callback(None)
    return statements


def test_a_hot_pull_with_a_token_reads_nothing_to_authenticate(reg) -> None:
    manifest = image(reg)
    assert push_manifest(reg, "dh", "app", "1.0", manifest).status_code == 201
    layer = manifest["layers"][0]["digest"]
    requests = {"manifest GET": ("GET", "/v2/dh/app/manifests/1.0", {**reg.auth, "Accept": OCI_MANIFEST}),
                "blob HEAD": ("HEAD", f"/v2/dh/app/blobs/{layer}", reg.auth)}
    for label, (method, path, headers) in requests.items():
        def pull() -> None:
            assert reg.client.simulate_request(method, path, headers=headers).status_code == 200, label

        pull()  # warm: permission decisions, the token's user, the manifest's metadata cached
        # (before: the throttle's address counter and the token's user, two reads on every request)
        assert _statements(reg.stowage, pull) == [], label


def test_a_throttled_address_is_refused_every_token_that_fails_and_every_password(reg) -> None:
    assert push_manifest(reg, "dh", "app", "1.0", image(reg)).status_code == 201
    guard = reg.stowage.signins
    guard.BASE_DELAY = 30.0  # (a busy test machine must not outlast the first wait)
    forged = {"Authorization": "Bearer dkr1.e30.forged"}
    path = "/v2/dh/app/tags/list"

    def status(headers: dict[str, str]) -> int:
        return reg.client.simulate_get(path, headers=headers, remote_addr=ADDRESS).status_code

    assert [status(forged) for _ in range(guard.ADDRESS_FREE_FAILURES)] == [401] * guard.ADDRESS_FREE_FAILURES
    assert status(forged) == 429
    # a failed token reads the counters and refuses: nothing about the token was learnt, nothing counted
    assert status({"Authorization": "Bearer npm_not-a-token"}) == 429
    # passwords are checked only once the address may try again: the right one is refused as well
    assert status(basic_auth("admin", "admin123")) == 429
    # a token that verifies is no guess: its holder is served behind the same address
    assert status(reg.auth) == 200
    # another address is not throttled
    assert reg.client.simulate_get(path, headers=forged, remote_addr="127.0.0.10").status_code == 401


def test_a_password_change_ends_a_token_at_once_here_and_promptly_in_another_process(stowage_factory) -> None:
    first = stowage_factory(repositories=[dict(name="dh", format="docker", type="hosted")])
    # a second app over the same data directory and catalog: another worker process, with its own caches
    second = stowage_factory(data_dir=first.stowage.settings.data_path)
    first.stowage.security.save_user(User(user_id="ci", roles=("nx-deployer",)), "ci-pw")
    token = first.client.simulate_get("/v2/token", headers=basic_auth("ci", "ci-pw")).json["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    path = "/v2/dh/app/tags/list"
    for app in (first, second):  # both have the user cached now
        assert app.client.simulate_get(path, headers=bearer).status_code == 404  # (no such image yet)
        assert app.client.simulate_get(path, headers=bearer).status_code == 404
    security = second.stowage.security
    security.save_user(security.get_user("ci"), "ci-new-pw")
    assert second.client.simulate_get(path, headers=bearer).status_code == 401  # at once where it changed
    # elsewhere within the security generation's check interval (1 s); polled, with a generous bound
    deadline = time.monotonic() + 30
    while first.client.simulate_get(path, headers=bearer).status_code != 401:
        assert time.monotonic() < deadline, "the first process still accepts a token of the old password"
        time.sleep(0.05)
    # a disabled user's new token dies the same way
    security.save_user(security.get_user("ci"), "ci-pw-3")
    token = second.client.simulate_get("/v2/token", headers=basic_auth("ci", "ci-pw-3")).json["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert second.client.simulate_get(path, headers=bearer).status_code == 404
    first.stowage.security.save_user(evolve(first.stowage.security.get_user("ci"), status="disabled"))
    assert first.client.simulate_get(path, headers=bearer).status_code == 401
    deadline = time.monotonic() + 30
    while second.client.simulate_get(path, headers=bearer).status_code != 401:
        assert time.monotonic() < deadline, "the second process still accepts a disabled user's token"
        time.sleep(0.05)
