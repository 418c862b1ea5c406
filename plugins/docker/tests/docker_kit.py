"""Fixtures: a Stowage with the seed's docker layout on free ports, and Debian's docker-registry upstream."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from stowage.testing.harness import free_port  # noqa: E402

REGISTRY_BIN = shutil.which("docker-registry") or shutil.which("registry")


def wait_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


class GoRegistry:
    """The CNCF distribution registry (Debian ``docker-registry``) on a free loopback port."""

    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        root.mkdir(parents=True, exist_ok=True)
        self.config = root / "config.yml"
        self.config.write_text(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "GoRegistry":
        self.process = subprocess.Popen([REGISTRY_BIN, "serve", str(self.config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def go_registry(tmp_path: Path) -> Iterator[GoRegistry]:
    if REGISTRY_BIN is None:
        pytest.fail("docker-registry is not installed (.ci/apt-packages.txt lists it)")
    registry = GoRegistry(tmp_path / "go-registry").start()
    yield registry
    registry.stop()


def skopeo(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"skopeo {' '.join(args)} failed:\n{result.stderr}")
    return result


@pytest.fixture
def docker_layout(stowage_factory: Callable[..., Any], live_server_factory: Callable[..., Any]) -> Callable[..., Any]:
    """The seed's docker layout (hosted + proxy + group, hosted and group on their own ports)."""

    def build(remote_url: str = "http://127.0.0.1:9", **proxy_extra: Any) -> Any:
        hosted_port, group_port = free_port(), free_port()
        ts = stowage_factory(repositories=[
            dict(name="docker-hosted", format="docker", type="hosted", docker={"httpPort": hosted_port},
                 namePolicy={"allow": ["orchestrator-*"], "deny": ["cwiq-*"]}),
            dict(name="docker-proxy", format="docker", type="proxy",
                 proxy={"remoteUrl": remote_url, **proxy_extra.pop("proxy", {})}, **proxy_extra),
            dict(name="docker-group", format="docker", type="group",
                 group={"memberNames": ["docker-hosted", "docker-proxy"]}, docker={"httpPort": group_port}),
        ])
        server = live_server_factory(ts)
        wait_port(hosted_port)
        wait_port(group_port)
        server.hosted = f"127.0.0.1:{hosted_port}"
        server.group = f"127.0.0.1:{group_port}"
        server.ts = ts
        return server

    return build
