"""Every serving process records a heartbeat in the shared catalog; the System page and
``GET /service/rest/v1/status/nodes`` list them, a stopped one leaves, a silent one is ``gone`` then pruned."""

from __future__ import annotations

import os
import signal
import time

import pytest
import urllib3

from stowage.cluster import WorkerRegistry
from stowage.security import User
from stowage.testing.harness import basic_auth

NODES = "/service/rest/v1/status/nodes"


def nodes(ts) -> list[dict]:
    response = ts.client.simulate_get(NODES, headers=ts.admin)
    assert response.status_code == 200, response.text
    return response.json


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_two_servers_on_one_catalog_are_listed_and_a_stopped_one_leaves(stowage_factory, live_server_factory, tmp_path):
    first = stowage_factory(data_dir=tmp_path / "data")
    second = stowage_factory(data_dir=tmp_path / "data", node_name="node-b")
    one, two = live_server_factory(first), live_server_factory(second)
    wanted = {f"127.0.0.1:{one.port}", f"127.0.0.1:{two.port}"}
    listed = wait_for(lambda: (entries := nodes(first)) and
                      {e["addresses"][0] for e in entries} == wanted and entries)
    assert all(e["state"] == "alive" and e["pid"] == os.getpid() for e in listed)
    assert {e["id"] for e in listed} == {first.stowage.node_id, second.stowage.node_id}
    assert [(e["self"], e["node"]) for e in nodes(second) if e["id"] == second.stowage.node_id] == [(True, "node-b")]
    html = first.client.simulate_get("/admin/system", headers=first.admin).text
    assert all(address in html for address in wanted) and html.count('<span class="badge ok">alive</span>') == 2

    two.stop()  # a graceful stop removes the entry at once
    assert [e["addresses"][0] for e in nodes(first)] == [f"127.0.0.1:{one.port}"]
    assert f"127.0.0.1:{two.port}" not in first.client.simulate_get("/admin/system", headers=first.admin).text


def test_a_silent_process_is_gone_then_pruned(stowage_factory, tmp_path):
    viewer = stowage_factory(data_dir=tmp_path / "data")
    crashed = stowage_factory(data_dir=tmp_path / "data")
    # a process that beat once and was then killed: it never leaves
    WorkerRegistry.of(crashed.stowage).beat(["127.0.0.1:1"])
    assert [e["state"] for e in nodes(viewer)] == ["alive"]
    WorkerRegistry.of(viewer.stowage).gone_after_seconds = 0.2
    time.sleep(0.3)
    assert [e["state"] for e in nodes(viewer)] == ["gone"]
    assert '<span class="badge bad">gone</span>' in viewer.client.simulate_get("/admin/system", headers=viewer.admin).text
    # whoever beats next prunes entries older than prune_after_seconds
    registry = WorkerRegistry.of(viewer.stowage)
    registry.prune_after_seconds = 0.2
    registry.beat(["127.0.0.1:2"])
    assert [(e["addresses"], e["state"]) for e in nodes(viewer)] == [(["127.0.0.1:2"], "alive")]


def test_only_admins_see_the_nodes(stowage_factory):
    ts = stowage_factory()
    ts.stowage.security.save_user(User(user_id="joe", roles=("nx-anonymous",)), "joe-pw")
    assert ts.client.simulate_get(NODES, headers=basic_auth("joe", "joe-pw")).status_code == 403
    assert ts.client.simulate_get(NODES).status_code in (401, 403)
    assert ts.client.simulate_get("/admin/system", headers=basic_auth("joe", "joe-pw")).status_code == 403


@pytest.mark.slow
def test_every_worker_of_stowage_serve_is_listed_and_leaves_on_sigterm(tmp_path, stowage_factory):
    import subprocess
    import sys

    from stowage.testing import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    auth = basic_auth("admin", "workers-pw")
    process = subprocess.Popen([sys.executable, "-m", "stowage.cli", "serve", "--data-dir", str(tmp_path / "data"),
                                "--port", str(port), "--workers", "2"],
                               env={**os.environ, "STOWAGE_ADMIN_PASSWORD": "workers-pw"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def listed():
            try:
                response = urllib3.request("GET", url + NODES, headers=auth, retries=False, timeout=2)
            except urllib3.exceptions.HTTPError:
                return None
            entries = response.json() if response.status == 200 else []
            return entries if len({e["pid"] for e in entries if e["state"] == "alive"}) == 2 else None

        entries = wait_for(listed, timeout=30)
        assert process.pid not in {e["pid"] for e in entries}  # workers serve; the supervisor does not
        assert all(e["addresses"] == [f"127.0.0.1:{port}"] for e in entries)
        page = urllib3.request("GET", f"{url}/admin/system", headers=auth).data.decode()
        assert all(f"<td>{e['pid']}</td>" in page for e in entries)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    # every worker removed its entry on the way out
    assert WorkerRegistry.of(stowage_factory(data_dir=tmp_path / "data").stowage).workers() == []
