"""The write API under concurrent writers in separate processes: an ALLOW_ONCE path checked by two workers
at once is committed by exactly one; no in-process lock is what keeps it right (each worker is its own
interpreter with its own catalog connection)."""

from __future__ import annotations

import io
import tarfile
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import urllib3

from stowage.testing.harness import basic_auth

ROUNDS = 12
CONFIG = """
[[repositories]]
name = "charts"
format = "helm"
type = "hosted"
storage = { writePolicy = "ALLOW_ONCE" }
"""


def chart(version: str, description: str) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        data = f"apiVersion: v2\nname: race\nversion: {version}\ndescription: {description}\n".encode()
        info = tarfile.TarInfo("race/Chart.yaml")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.slow
def test_two_worker_processes_checking_one_allow_once_path_commit_it_once(serve_factory, tmp_path):
    pytest.importorskip("stowage_helm")
    first = serve_factory(CONFIG, data_dir=tmp_path / "shared")
    second = serve_factory(CONFIG, data_dir=tmp_path / "shared")
    headers = basic_auth("admin", first.password)
    for round_ in range(ROUNDS):
        version = f"1.0.{round_}"
        bodies = {url: chart(version, f"pushed to {url}") for url in (first.url, second.url)}
        barrier = threading.Barrier(2)

        def push(url: str) -> int:
            barrier.wait()
            return urllib3.request("PUT", f"{url}/repository/charts/race-{version}.tgz", body=bodies[url],
                                   headers=headers, timeout=30).status

        with ThreadPoolExecutor(2) as pool:
            statuses = dict(zip(bodies, pool.map(push, bodies)))
        assert sorted(statuses.values()) == [201, 400], statuses
        winner = next(url for url, status in statuses.items() if status == 201)
        for url in bodies:  # both workers serve the winner's bytes
            served = urllib3.request("GET", f"{url}/repository/charts/race-{version}.tgz", timeout=30)
            assert served.status == 200 and served.data == bodies[winner]
