"""Issue 16: ``npm publish`` of a 50 MiB package through a live ``stowage serve`` keeps memory flat.

The publish body is JSON with the tarball inside as base64 (~67 MiB here): the server must decode it into
the blob store as it arrives, not hold the body or the decoded text.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from core_helpers import RssSampler

NPM = shutil.which("npm")
RSS_LIMIT_KIB = 150 * 1024
NPM_HOSTED = """
[[repositories]]
name = "npm-hosted"
format = "npm"
type = "hosted"
storage = { writePolicy = "ALLOW" }
"""


def _npm(home: Path, server, *args: str, cwd: Path) -> None:
    registry = f"{server.url}/repository/npm-hosted/"
    auth = base64.b64encode(f"admin:{server.password}".encode()).decode()
    (home / ".npmrc").write_text(f"//127.0.0.1:{server.port}/repository/npm-hosted/:_auth={auth}\n")
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_config_")}
    env.update(HOME=str(home), npm_config_userconfig=str(home / ".npmrc"), npm_config_cache=str(home / "cache"),
               npm_config_update_notifier="false", npm_config_fund="false", npm_config_loglevel="error")
    subprocess.run([NPM, *args, "--registry", registry], cwd=cwd, env=env, check=True, capture_output=True,
                   timeout=300)


@pytest.mark.slow
@pytest.mark.skipif(NPM is None, reason="npm is not installed")
def test_npm_publish_of_50_mib_keeps_memory_flat(serve_factory, tmp_path):
    server = serve_factory(NPM_HOSTED)
    package = tmp_path / "package"
    package.mkdir()
    (package / "package.json").write_text(json.dumps({"name": "big-one", "version": "1.0.0"}))
    (package / "payload.bin").write_bytes(os.urandom(50 << 20))  # random: the tarball stays ~50 MiB
    home = tmp_path / "home"
    home.mkdir()
    _npm(home, server, "pack", cwd=package)
    tarball = package / "big-one-1.0.0.tgz"
    with RssSampler(server.rss_kib) as rss:
        _npm(home, server, "publish", str(tarball), cwd=package)
    assert rss.samples > 5
    assert rss.peak_kib < RSS_LIMIT_KIB, f"peak RSS {rss.peak_kib} KiB during a 50 MiB npm publish"

    # What was stored is the tarball npm sent, byte for byte, and the packument says so.
    with urllib.request.urlopen(f"{server.url}/repository/npm-hosted/big-one") as response:
        dist = json.load(response)["versions"]["1.0.0"]["dist"]
    stored = urllib.request.urlopen(f"{server.url}/repository/npm-hosted/big-one/-/big-one-1.0.0.tgz").read()
    assert hashlib.sha1(stored).hexdigest() == hashlib.sha1(tarball.read_bytes()).hexdigest() == dist["shasum"]
