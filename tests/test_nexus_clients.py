"""Issue 13: Nexus clients nobody on this project wrote, against a live server.

``sonatype-nxrm-sdk`` (generated from Nexus 3.42's document) and ``nexus3-cli`` pin dependencies that
clash with the test tools, so ``./dev install`` puts them in ``.venv-nexus-clients`` and they run there,
as separate processes, like any client.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = Path(os.environ.get("STOWAGE_NEXUS_CLIENTS_VENV", ROOT / ".venv-nexus-clients"))
DRIVER = Path(__file__).parent / "nexus_clients" / "sdk_driver.py"

pytestmark = pytest.mark.skipif(
    not (CLIENTS / "bin" / "nexus3").exists() and not os.environ.get("CI"),
    reason=f"{CLIENTS} is missing: ./dev install creates it (requirements-nexus-clients.txt)")


@pytest.fixture
def server(stowage_app, live_server_factory):
    return stowage_app, live_server_factory(stowage_app)


def test_sonatype_nxrm_sdk_round_trips_every_format_and_type(server, tmp_path):
    ts, live = server
    done = subprocess.run([str(CLIENTS / "bin" / "python"), str(DRIVER), live.url, "admin", ts.admin_password,
                           str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    summary = json.loads(done.stdout)
    names = [f"{fmt}-{kind}" for fmt in ("raw", "pypi", "npm", "docker", "yum")
             for kind in ("hosted", "proxy", "group")]
    assert summary["created"] == names and summary["listed"] == sorted(names)
    # typed getters saw what the typed models sent, in the spelling the 3.42 document uses
    assert summary["read"]["yum-hosted"]["storage"]["write_policy"] == "allow_once"
    assert summary["read"]["docker-proxy"]["http_client"]["connection"]["user_agent_suffix"] == "sdk"
    assert summary["read"]["pypi-proxy"]["negative_cache"] == {"enabled": True, "time_to_live": 1440}
    assert summary["components"] == [["/sdk/drop", "sdk/drop/notes.txt", None]]
    assert summary["search"] == ["sdk/drop/notes.txt"] and summary["search_assets"] == ["sdk/drop/notes.txt"]
    assert set(summary["assets"][0]["checksum"]) == {"md5", "sha1", "sha256", "sha512"}
    assert "Database" in summary["checks"]
    assert summary["script"] == [410, "Creating and updating scripts is disabled"]


def _nexus3(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([str(CLIENTS / "bin" / "nexus3"), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HOME": str(home)}, stdin=subprocess.DEVNULL)
    if check:
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


def test_nexus3_cli_works_and_explains_scripting(server, tmp_path):
    """nexus3-cli 4 installs Groovy scripts for most commands: against a Nexus with scripting disabled (and
    Stowage) those end with its advice to enable scripting; the script-free commands work."""
    ts, live = server
    ts.create_repository(name="raw-hosted", format="raw", type="hosted")
    home = tmp_path / "home"
    home.mkdir()
    _nexus3(home, "login", "-U", live.url, "-u", "admin", "-p", ts.admin_password, "--no-x509_verify")
    assert "default" in _nexus3(home, "blobstore", "list").stdout
    assert "blobstore.compact" in _nexus3(home, "task", "list").stdout
    assert _nexus3(home, "script", "list").returncode == 0

    source = tmp_path / "report.txt"
    source.write_text("made by nexus3-cli\n")
    for args in (("repository", "list"), ("repository", "create", "hosted", "raw", "made-by-script"),
                 ("list", "raw-hosted/"), ("upload", str(source), "raw-hosted/reports/"),
                 ("script", "create", "mine", str(source))):
        refused = _nexus3(home, *args, check=False)
        assert refused.returncode == 40, (args, refused.stderr)  # CliReturnCode.CONFIG_ERROR
        assert "Please enable scripting in your Nexus instance" in refused.stderr, (args, refused.stderr)
        assert "Traceback" not in refused.stderr, (args, refused.stderr)
    assert ts.stowage.catalog.get_repository("made-by-script") is None
