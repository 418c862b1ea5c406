"""Local attacks on a running server (issue #10, items 3 and 10): a data directory other users can read,
and workers orphaned by a supervisor that was killed."""

from __future__ import annotations

import logging
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
import urllib3

from core_helpers import STOWAGE
from stowage.testing import ADMIN_PASSWORD, free_port
from stowage.testing.harness import basic_auth, build_stowage


def modes(root: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        if not path.is_symlink():
            found[str(path.relative_to(root))] = stat.S_IMODE(path.stat().st_mode)
    return found


def test_the_data_directory_is_private_to_the_server(serve_factory, tmp_path):
    data = tmp_path / "fresh-data"
    server = serve_factory(data_dir=data, env={"STOWAGE_ADMIN_PASSWORD": ""})  # admin.password is written
    auth = basic_auth("admin", (data / "admin.password").read_text())
    put = urllib3.request("PUT", f"{server.url}/repository/raw-hosted-dev/a/b/file.txt", body=b"x" * 100,
                          headers=auth)
    assert put.status == 201, put.data
    found = modes(data)
    assert "db/catalog.sqlite" in found and "admin.password" in found
    assert sum(1 for name in found if (data / name).is_file()) > 3  # catalog files, the blob, the password
    for name, mode in found.items():
        assert mode == (0o700 if (data / name).is_dir() else 0o600), f"{name} is {mode:04o}"
    assert "readable or writable by other users" not in server.log()


def test_start_up_warns_when_the_data_directory_is_open(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("STOWAGE_ADMIN_PASSWORD", ADMIN_PASSWORD)
    data = tmp_path / "open"
    data.mkdir(mode=0o755)
    data.chmod(0o755)  # whatever the test runner's umask
    (data / "db").mkdir()
    (data / "db").chmod(0o700)
    (data / "db" / "catalog.sqlite").write_bytes(b"")
    (data / "db" / "catalog.sqlite").chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="stowage.data_permissions"):
        ts = build_stowage(data)
    ts.stowage.close()
    warnings = [r.getMessage() for r in caplog.records if r.name == "stowage.data_permissions"]
    assert len(warnings) == 1, warnings
    assert f"{data} (mode 0755)" in warnings[0] and f"{data / 'db' / 'catalog.sqlite'} (mode 0644)" in warnings[0]
    assert f"chmod -R go-rwx {data}" in warnings[0]
    # Once fixed, no warning.
    for path in (data, *data.rglob("*")):
        path.chmod(0o700 if path.is_dir() else 0o600)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="stowage.data_permissions"):
        build_stowage(data).stowage.close()
    assert [r for r in caplog.records if r.name == "stowage.data_permissions"] == []


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def start_workers(data: Path, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "STOWAGE_ADMIN_PASSWORD": ADMIN_PASSWORD}
    process = subprocess.Popen([STOWAGE, "serve", "--data-dir", str(data), "--host", "127.0.0.1", "--port", str(port),
                                "--workers", "2"], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if urllib3.request("GET", f"http://127.0.0.1:{port}/service/rest/v1/status", retries=False,
                               timeout=1).status == 200 and len(children_of(process.pid)) == 2:
                return process
        except urllib3.exceptions.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"stowage serve --workers 2 did not start:\n{log.read_text()}")


@pytest.mark.slow
def test_workers_exit_when_their_supervisor_is_killed_and_a_restart_works(tmp_path):
    port = free_port()
    log = tmp_path / "serve.log"
    first = start_workers(tmp_path / "data", port, log)
    workers = children_of(first.pid)
    try:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        deadline = time.monotonic() + 20
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        orphans = [pid for pid in workers if alive(pid)]
        assert orphans == [], f"workers {orphans} outlived their supervisor"
    finally:
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    second = start_workers(tmp_path / "data", port, log)  # the same port: nothing holds it any more
    try:
        assert "Address already in use" not in log.read_text()
        answer = urllib3.request("GET", f"http://127.0.0.1:{port}/service/rest/v1/repositories",
                                 headers=basic_auth("admin", ADMIN_PASSWORD))
        assert answer.status == 200
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
