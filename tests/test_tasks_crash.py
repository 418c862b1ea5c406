"""A task run whose process is killed is marked FAILED (not RUNNING forever) and can run again."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest
import urllib3

from core_helpers import ServeProcess
from stowage.testing import ADMIN_PASSWORD
from stowage.testing.harness import basic_auth

V1 = "/service/rest/v1"
FILES = 30_000


def progress_rank(message: str) -> int:
    """Where a cleanup run's progress message comes in the run: messages only move forward."""
    if message.endswith(": started"):
        return -2
    if message == "files: selecting what old remove(s)":
        return -1
    removed = re.fullmatch(r"files: removed ([\d,]+) of 15,000 components", message)
    assert removed, message
    return int(removed.group(1).replace(",", ""))


def populate(data_dir: Path) -> None:
    from stowage.app import create_stowage
    from stowage.settings import ConfigFile, ServerSettings

    settings = ServerSettings(data_dir=str(data_dir))
    stowage = create_stowage(settings, config=ConfigFile(
        server=settings, cleanup_policies=({"name": "old", "format": "raw", "criteriaAssetRegex": "old/.*"},),
        repositories=({"name": "files", "format": "raw", "type": "hosted", "cleanup": {"policyNames": ["old"]}},)))
    repository = stowage.repository("files")
    blob = repository.blob_store.store(io.BytesIO(b"same bytes"))
    for start in range(0, FILES, 1000):
        with stowage.catalog.transaction():
            for n in range(start, start + 1000):
                repository.record(f"{'old' if n % 2 else 'new'}/{n}.txt", blob)
    stowage.close()


@pytest.mark.slow
def test_a_run_killed_with_its_process_is_failed_and_runs_again(tmp_path, monkeypatch):
    monkeypatch.setenv("STOWAGE_ADMIN_PASSWORD", ADMIN_PASSWORD)
    data = tmp_path / "data"
    populate(data)
    config = tmp_path / "stowage.toml"
    config.write_text("[server]\ntaskLeaseSeconds = 2\n")
    admin = basic_auth("admin", ADMIN_PASSWORD)

    def task(server):
        return urllib3.request("GET", f"{server.url}{V1}/tasks/repository.cleanup", headers=admin).json()

    first = ServeProcess(config, data).start()
    try:
        assert urllib3.request("POST", f"{first.url}{V1}/tasks/repository.cleanup/run", headers=admin).status == 204
        deadline = time.monotonic() + 60
        while True:  # kill it in the middle of its work
            state = task(first)
            # RUNNING is enough: on an idle machine the whole run can end between two progress reports
            if state["currentState"] == "RUNNING":
                break
            assert state["lastRunResult"] is None, f"the run ended before it could be killed: {state}"
            assert time.monotonic() < deadline, state
            time.sleep(0.02)
        first.crash()
    finally:
        first.stop()
    last_progress = state["message"]

    second = ServeProcess(config, data).start()
    try:
        deadline = time.monotonic() + 120
        while True:
            state = task(second)
            if state["lastRunResult"]:
                break
            assert time.monotonic() < deadline, state
            time.sleep(0.1)
        assert state["currentState"] == "WAITING" and state["lastRunResult"] == "FAILED", state
        # The run's last progress message is kept. It may be later than the one seen before the kill (the
        # run writes one a second; on a loaded machine one more can land before the SIGKILL).
        kept = re.fullmatch(r"the run on .+ stopped with its process \(last message: (.+)\)", state["message"])
        assert kept, state
        assert progress_rank(kept.group(1)) >= progress_rank(last_progress), (last_progress, state)
        assert urllib3.request("POST", f"{second.url}{V1}/tasks/repository.cleanup/run", headers=admin).status == 204
        deadline = time.monotonic() + 300
        while True:
            state = task(second)
            if state["currentState"] == "WAITING" and state["lastRunResult"] != "FAILED":
                break
            assert time.monotonic() < deadline, state
            time.sleep(0.1)
        assert state["lastRunResult"] == "OK", state
        listed = urllib3.request("GET", f"{second.url}{V1}/search/assets?repository=files&q=old/", headers=admin)
        assert listed.json()["items"] == []
        assert urllib3.request("GET", f"{second.url}/repository/files/new/0.txt").status == 200
        assert urllib3.request("GET", f"{second.url}/repository/files/old/{FILES - 1}.txt").status == 404
        assert "removed" in state["message"]
    finally:
        second.stop()
