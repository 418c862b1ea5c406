"""``stowage serve --workers N``: several processes on one socket; repository ports shared by every worker."""

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import urllib3

from stowage.hookspecs import hookimpl
from stowage.registration import Format, Route
from stowage.testing import free_port
from stowage.testing.harness import basic_auth


def wait_until_up(url, process, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()
        try:
            if urllib3.request("GET", f"{url}/service/rest/v1/status", retries=False, timeout=1).status == 200:
                return
        except urllib3.exceptions.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not start")


def worker_pid(url, auth):
    # a fresh pool per call: a new connection, so any worker may accept it
    text = urllib3.PoolManager(maxsize=1).request("GET", f"{url}/service/metrics/prometheus", headers=auth).data
    line = next(line for line in text.decode().splitlines() if line.startswith("stowage_worker_info{"))
    return int(line.split('pid="')[1].split('"')[0])


def test_workers_share_the_port_and_the_catalog_and_stop_on_sigterm(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "STOWAGE_ADMIN_PASSWORD": "workers-pw"}
    process = subprocess.Popen([sys.executable, "-m", "stowage.cli", "serve", "--data-dir", str(tmp_path / "data"),
                                "--port", str(port), "--workers", "2"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_up(url, process)
        auth = basic_auth("admin", "workers-pw")
        created = urllib3.request("POST", f"{url}/service/rest/v1/repositories/raw/hosted", headers=auth,
                                  json={"name": "raw", "online": True})
        assert created.status in (200, 201, 204), created.data
        pids = set()
        deadline = time.monotonic() + 30  # the second worker may still be starting
        while len(pids) < 2 and time.monotonic() < deadline:
            with ThreadPoolExecutor(8) as pool:
                pids |= set(pool.map(lambda _: worker_pid(url, auth), range(32)))
        assert len(pids) == 2, pids
        assert os.getpid() not in pids and process.pid not in pids
        # a write on one worker is visible on every worker (one catalog), whichever answers
        assert urllib3.request("PUT", f"{url}/repository/raw/f", body=b"shared", headers=auth).status == 201
        with ThreadPoolExecutor(8) as pool:
            bodies = set(pool.map(lambda _: urllib3.PoolManager(maxsize=1).request(
                "GET", f"{url}/repository/raw/f").data, range(32)))
        assert bodies == {b"shared"}
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        raise AssertionError(f"worker {pid} outlived its parent")


def test_cli_refuses_zero_workers():
    result = subprocess.run([sys.executable, "-m", "stowage.cli", "serve", "--workers", "0"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "--workers" in result.stderr


# -- repository ports under several workers: each binds them with SO_REUSEPORT ------------------------

def make_port_plugin(port):
    from stowage.formats import FormatHandler

    class Handler(FormatHandler):
        pass

    class WhoAmI:
        def __init__(self, stowage):
            self.stowage = stowage

        def on_get(self, req, resp):
            resp.media = {"repository": req.context.port_repository}

    class Plugin:
        @hookimpl
        def stowage_register_formats(self):
            return [Format(name="porty", handler=Handler, port_of=lambda config: port)]

        @hookimpl
        def stowage_register_routes(self):
            return [Route(path="/whoami", resource=WhoAmI, on_ports=True)]

    return Plugin()


def test_every_worker_serves_repository_ports(stowage_factory, tmp_path):
    from stowage.server import Server

    port = free_port()
    workers = []
    for _ in range(2):  # two "workers" on one catalog, as after the fork
        ts = stowage_factory(data_dir=tmp_path / "shared", plugins=[make_port_plugin(port)])
        workers.append(ts)
    workers[0].create_repository(name="porty-hosted", format="porty", type="hosted")
    servers = [Server(ts.app, ts.stowage, host="127.0.0.1", port=0, threads=4, reuse_port=True) for ts in workers]
    threads = [threading.Thread(target=s.serve, kwargs={"install_signal_handlers": False}, daemon=True)
               for s in servers]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not all(port in s.port_servers for s in servers):
            time.sleep(0.1)
        assert all(port in s.port_servers for s in servers), "both workers bind the repository port"
        answer = urllib3.request("GET", f"http://127.0.0.1:{port}/whoami").json()
        assert answer == {"repository": "porty-hosted"}
    finally:
        for server in servers:
            server.stop_loop()
        for thread in threads:
            thread.join(timeout=10)
