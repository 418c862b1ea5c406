"""Fixtures for the yum plugin's tests: real RPMs built with rpmbuild (once per session)."""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import textwrap
import threading
from pathlib import Path
from typing import Callable, Iterator

import pytest

from stowage.plugin import BackgroundWork

from stowage_yum.state import JOB


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class Upstream:
    """A static yum repository (a directory indexed by the createrepo_c command) on a loopback port."""

    def __init__(self, root: Path):
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def yum_upstream(tmp_path: Path) -> Iterator[Callable[..., Upstream]]:
    """Factory: ``make(rpm_files, repo_dir="")`` serves a createrepo_c repository at ``<url>/<repo_dir>``
    with the RPMs under ``Packages/`` (an item ``(path, name)`` stores the file under another name)."""
    servers: list[Upstream] = []

    def make(rpm_files: list[Path | tuple[Path, str]], repo_dir: str = "", *, checksum: str = "sha256") -> Upstream:
        root = tmp_path / f"upstream-{len(servers)}"
        repo = root / repo_dir
        (repo / "Packages").mkdir(parents=True)
        for rpm in rpm_files:
            source, name = rpm if isinstance(rpm, tuple) else (rpm, rpm.name)
            shutil.copy(source, repo / "Packages" / name)
        subprocess.run(["createrepo_c", "--quiet", "--no-database", "--checksum", checksum, str(repo)], check=True)
        server = Upstream(root)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


SPECS = {
    "hello-1.0": dict(name="hello", version="1.0", extra="Requires: world >= 2\nRecommends: extra-tools\n"
                                                          "Provides: greeting = 1.0\nSuggests: fancy-fonts\n"),
    "hello-1.1": dict(name="hello", version="1.1", extra="Requires: world >= 2\nRecommends: extra-tools\n"
                                                          "Provides: greeting = 1.1\nSupplements: desktop\n"
                                                          "Enhances: shell\nConflicts: hello-legacy\n"
                                                          "Obsoletes: hello-old < 1\n"),
    "world-2.0": dict(name="world", version="2.0", extra="Requires: /bin/sh\n"),
    "lib-3.0": dict(name="lib", version="3.0", extra=""),
}


def build_rpm(topdir: Path, name: str, version: str, extra: str = "", release: str = "1") -> Path:
    spec = topdir / f"{name}-{version}.spec"
    spec.write_text(textwrap.dedent("""\
        Name: {name}
        Version: {version}
        Release: {release}
        Summary: {name} for Stowage tests
        License: MIT
        BuildArch: noarch
        {extra}
        %description
        The {name} test package.
        %install
        mkdir -p %{{buildroot}}/usr/share/{name}
        echo {name}-{version} > %{{buildroot}}/usr/share/{name}/VERSION
        %files
        /usr/share/{name}/VERSION
        %changelog
        * Mon Jan 01 2024 Stowage Tests <tests@example.org> - {version}-{release}
        - Version {version}.
        """).format(name=name, version=version, release=release, extra=extra))
    subprocess.run(["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {topdir}/top",
                    "--define", f"_rpmdir {topdir}/rpms", "--define", "_build_id_links none", str(spec)],
                   check=True, capture_output=True)
    return topdir / "rpms" / "noarch" / f"{name}-{version}-{release}.noarch.rpm"


@pytest.fixture(scope="session")
def rpms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small real noarch RPMs, keyed ``hello-1.0``, ``hello-1.1``, ``world-2.0``, ``lib-3.0``."""
    if shutil.which("rpmbuild") is None:
        pytest.fail("rpmbuild is required (Debian package rpm, listed in .ci/apt-packages.txt)")
    topdir = tmp_path_factory.mktemp("rpmbuild")
    return {key: build_rpm(topdir, **spec) for key, spec in SPECS.items()}


@pytest.fixture
def yum_app(stowage_factory: Callable) -> Callable:
    """An app with yum-hosted / yum-hosted2 / yum-group (and any extra repositories), quick coalescing."""

    def make(*extra: dict, depth: int = 0, delay: float = 0.2, **kwargs) -> object:
        repositories = [
            {"name": "yum-hosted", "format": "yum", "type": "hosted",
             "yum": {"repodataDepth": depth, "deployPolicy": "STRICT"}},
            {"name": "yum-hosted2", "format": "yum", "type": "hosted"},
            *extra,
        ]
        names = [r["name"] for r in repositories]
        repositories.append({"name": "yum-group", "format": "yum", "type": "group",
                             "group": {"memberNames": names}})
        test_stowage = stowage_factory(repositories=repositories, **kwargs)
        work = BackgroundWork.of(test_stowage.stowage)
        work.configure(JOB, delay=delay)
        work.poll_seconds = 0.05
        return test_stowage

    return make


@pytest.fixture
def rpm_builder(tmp_path: Path) -> Callable[..., Path]:
    """``rpm_builder(name, version, release="1")``: a small real noarch RPM built for this test."""
    topdir = tmp_path / "rpm-builder"
    topdir.mkdir()
    return lambda name, version, release="1": build_rpm(topdir, name, version, release=release)
