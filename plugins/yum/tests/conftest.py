"""Fixtures for the yum plugin's tests: real RPMs built with rpmbuild (once per session)."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Callable

import pytest

from stowage_yum.hosted import regenerator

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
        worker = regenerator(test_stowage.stowage)
        worker.delay = delay
        worker.poll_seconds = 0.05
        return test_stowage

    return make
