"""Fixtures for driving the real ``npm`` client against live Stowage servers on loopback."""

from __future__ import annotations

import base64
import json
import os
import re
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import pytest

NPM = shutil.which("npm")

pytestmark = pytest.mark.skipif(NPM is None, reason="npm is not installed")


class NpmClient:
    """The npm CLI with its own HOME, userconfig and cache (never the machine's, never the public registry)."""

    def __init__(self, home: Path, registry: str):
        self.home = home
        self.registry = registry
        self.npmrc = home / ".npmrc"
        home.mkdir(parents=True, exist_ok=True)
        self.npmrc.write_text("")

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_config_")}
        env.update(HOME=str(self.home), npm_config_userconfig=str(self.npmrc),
                   npm_config_cache=str(self.home / "cache"), npm_config_update_notifier="false",
                   npm_config_fund="false", npm_config_loglevel="warn", npm_config_registry=self.registry)
        return env

    def auth(self, registry: str, *, token: str | None = None, user: str | None = None,
             password: str | None = None) -> None:
        prefix = "//" + registry.split("://", 1)[1].rstrip("/") + "/"
        lines = [line for line in self.npmrc.read_text().splitlines() if not line.startswith(prefix)]
        if token:
            lines.append(f"{prefix}:_authToken={token}")
        if user:
            lines.append(f"{prefix}:_auth={base64.b64encode(f'{user}:{password}'.encode()).decode()}")
        self.npmrc.write_text("\n".join(lines) + "\n")

    def run(self, *args: str, cwd: Path | None = None, check: bool = True, input: str | None = None,
            registry: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        command = [NPM, *args, "--registry", registry or self.registry]
        result = subprocess.run(command, cwd=cwd or self.home, env=self.env(), capture_output=True, text=True,
                                input=input, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def run_tty(self, *args: str, answers: list[str], timeout: float = 60) -> tuple[int, str]:
        """Run npm on a pseudo-terminal, answering its prompts (``Username:``, ``Password:``) in order."""
        command = [NPM, *args, "--registry", self.registry]
        master, slave = os.openpty()
        process = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, env=self.env(),
                                   cwd=self.home, close_fds=True)
        os.close(slave)
        output, since_answer, pending = b"", b"", list(answers)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([master], [], [], 0.2)
                if ready:
                    try:
                        data = os.read(master, 4096)
                    except OSError:
                        break
                    if not data:
                        break
                    output += data
                    since_answer += data
                    visible = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", since_answer)
                    if pending and visible.rstrip().endswith(b":"):
                        os.write(master, (pending.pop(0) + "\n").encode())
                        since_answer = b""
                elif process.poll() is not None:
                    break
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            os.close(master)
        return process.returncode, output.decode(errors="replace")


def make_package(root: Path, name: str, version: str, *, dependencies: dict[str, str] | None = None,
                 body: str | None = None) -> Path:
    directory = root / f"{name.replace('/', '__')}-{version}"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "package.json").write_text(json.dumps({
        "name": name, "version": version, "description": f"{name} for tests", "main": "index.js",
        "license": "MIT", "keywords": ["stowage-test"], "dependencies": dependencies or {}}))
    (directory / "index.js").write_text(body or f"module.exports = {json.dumps(name + '@' + version)};\n")
    return directory


def installed_version(project: Path, name: str) -> str:
    return json.loads((project / "node_modules" / name / "package.json").read_text())["version"]


NPM_REPOSITORIES = [
    {"name": "npm-hosted", "format": "npm", "type": "hosted"},
    {"name": "npm-group", "format": "npm", "type": "group", "group": {"memberNames": ["npm-hosted"]}},
]


@pytest.fixture
def npm_server(stowage_factory: Callable[..., Any], live_server_factory: Callable[..., Any]) -> Any:
    return live_server_factory(stowage_factory(repositories=NPM_REPOSITORIES))


@pytest.fixture
def npm_client(tmp_path: Path, npm_server: Any) -> NpmClient:
    client = NpmClient(tmp_path / "home", f"{npm_server.url}/repository/npm-group/")
    client.auth(f"{npm_server.url}/repository/npm-hosted/", user="admin",
                password=npm_server.test_stowage.admin_password)
    return client
