"""Fixtures for the pypi plugin's tests: distributions built in the test, clients isolated from this
machine's pip/uv configuration, a request recorder and a pypiserver upstream on loopback."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Callable, Iterator

import pytest
import urllib3
from packaging.utils import canonicalize_name

from stowage.testing import free_port

BIN = Path(sys.executable).parent


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def make_wheel(directory: Path, name: str, version: str, *, metadata_name: str | None = None,
               requires_python: str | None = None, requires: tuple[str, ...] = (),
               metadata_version: str | None = None, extra_files: dict[str, bytes] | None = None) -> Path:
    """A real, installable pure-Python wheel (PEP 427, with a correct RECORD), built by hand: fast.

    :param extra_files: more members (path in the wheel -> bytes), e.g. a large payload for upload benches.
    """
    dist = canonicalize_name(name).replace("-", "_")
    package = dist
    info = f"{dist}-{version}.dist-info"
    metadata = [f"Metadata-Version: 2.1", f"Name: {metadata_name or name}",
                f"Version: {metadata_version or version}", "Summary: a test package"]
    if requires_python:
        metadata.append(f"Requires-Python: {requires_python}")
    metadata += [f"Requires-Dist: {r}" for r in requires]
    files = {
        f"{package}/__init__.py": f"VERSION = {version!r}\n".encode(),
        f"{info}/METADATA": ("\n".join(metadata) + "\n\n").encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: stowage-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        **(extra_files or {}),
    }
    record = [_record_line(path, data) for path, data in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = directory / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in files.items():
            archive.writestr(member, data)
    return path


def make_sdist(directory: Path, name: str, version: str, *, requires_python: str | None = None) -> Path:
    """A PEP 625 source distribution (``<name>-<version>.tar.gz`` with PKG-INFO and pyproject.toml)."""
    dist = canonicalize_name(name).replace("-", "_")
    top = f"{dist}-{version}"
    pkg_info = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    if requires_python:
        pkg_info += f"Requires-Python: {requires_python}\n"
    members = {
        f"{top}/PKG-INFO": pkg_info.encode(),
        f"{top}/pyproject.toml": (f'[project]\nname = "{name}"\nversion = "{version}"\n'
                                  f'[build-system]\nrequires = ["setuptools"]\n'
                                  f'build-backend = "setuptools.build_meta"\n').encode(),
        f"{top}/{dist}/__init__.py": f"VERSION = {version!r}\n".encode(),
    }
    path = directory / f"{top}.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            info.mtime = int(time.time())
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def dists(tmp_path: Path) -> Path:
    path = tmp_path / "dists"
    path.mkdir()
    return path


@pytest.fixture
def client_env(tmp_path: Path) -> dict[str, str]:
    """An environment in which pip, uv and twine see only what a test tells them (no machine config)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "TWINE_", "PYTHONPATH"))}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1",
               PIP_CACHE_DIR=str(tmp_path / "pip-cache"), UV_NO_CONFIG="1", UV_CACHE_DIR=str(tmp_path / "uv-cache"),
               HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), NO_PROXY="*", no_proxy="*")
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(proxy, None)
    return env


def run(args: list[str], env: dict[str, str], *, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def twine_upload(url: str, files: list[Path], env: dict[str, str], password: str, *,
                 check: bool = True) -> subprocess.CompletedProcess:
    return run([str(BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar",
                "--repository-url", url, "-u", "admin", "-p", password, *map(str, files)], env, check=check)


def pip(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "pip", *args], env, check=check)


def uv(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run([str(BIN / "uv"), *args], env, check=check)


class RequestRecorder:
    """Falcon middleware that remembers every request path (to prove what a client did or did not fetch)."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def process_request(self, req, resp) -> None:  # noqa: ANN001
        self.paths.append(req.path)


@pytest.fixture
def recorder() -> RequestRecorder:
    return RequestRecorder()


class PypiServer:
    """A real pypiserver (from PyPI) on a free loopback port serving ``directory``."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "PypiServer":
        self.process = subprocess.Popen(
            [str(BIN / "pypi-server"), "run", "-i", "127.0.0.1", "-p", str(self.port), "-a", ".", "-P", ".",
             "--hash-algo", "sha256", "--disable-fallback", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if urllib3.request("GET", f"{self.url}/simple/", timeout=1, retries=False).status == 200:
                    return self
            except urllib3.exceptions.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("pypiserver did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def pypiserver_factory() -> Iterator[Callable[[Path], PypiServer]]:
    if shutil.which("pypi-server", path=str(BIN)) is None:
        pytest.fail("pypiserver is not installed: ./dev install installs requirements-test.txt")
    servers: list[PypiServer] = []

    def factory(directory: Path) -> PypiServer:
        server = PypiServer(directory).start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()


def hosted_proxy_group(test_stowage, remote_url: str, **group: object) -> None:
    test_stowage.create_repository(name="pypi-hosted", format="pypi", type="hosted")
    test_stowage.create_repository(name="pypi-proxy", format="pypi", type="proxy",
                                   proxy={"remoteUrl": remote_url, "metadataMaxAge": 0})
    test_stowage.create_repository(name="pypi-group", format="pypi", type="group",
                                   group={"memberNames": ["pypi-hosted", "pypi-proxy"], **group})


def limit_dev_to_cwiq(stowage, repository: str = "pypi-hosted") -> None:
    """User ``dev`` (password ``dev-pw``) may read and write only the ``cwiq-*`` projects of ``repository``
    (a content selector); anonymous access is off."""
    from stowage.security import User

    security = stowage.security
    security.save_selector({"name": "cwiq", "description": "", "expression":
                            'format == "pypi" and (path =^ "/simple/cwiq-" or path =^ "/packages/cwiq-")'})
    security.save_privilege({"type": "repository-content-selector", "name": "cwiq-pypi", "format": "pypi",
                             "repository": repository, "contentSelector": "cwiq", "actions": ["ALL"]})
    security.save_role({"id": "cwiq-dev", "name": "cwiq-dev", "privileges": ["cwiq-pypi"], "roles": []})
    security.save_user(User(user_id="dev", roles=("cwiq-dev",)), "dev-pw")
    security.set_anonymous_settings(False)
