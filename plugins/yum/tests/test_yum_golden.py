"""Golden test: our repodata against what the createrepo_c command writes for the same RPMs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import createrepo_c as cr
import pytest

from stowage.plugin import BackgroundWork
from stowage_yum.state import JOB

PACKAGE_FIELDS = ("name", "arch", "epoch", "version", "release", "pkgId", "checksum_type", "location_href",
                  "summary", "description", "rpm_license", "rpm_sourcerpm", "rpm_header_start", "rpm_header_end",
                  "size_package", "size_installed", "size_archive", "requires", "provides", "conflicts",
                  "obsoletes", "recommends", "suggests", "supplements", "enhances", "files", "changelogs")


def load(directory: Path) -> dict[str, dict]:
    metadata = cr.Metadata()
    metadata.locate_and_load_xml(str(directory))
    found = {}
    for key in metadata.keys():
        package = metadata.get(key)
        found[package.location_href] = {field: getattr(package, field) for field in PACKAGE_FIELDS}
    return found


def test_repodata_matches_createrepo_c(yum_app, rpms, tmp_path):
    if shutil.which("createrepo_c") is None:
        pytest.fail("the createrepo_c command is required (Debian package createrepo-c)")
    peer = tmp_path / "peer"
    (peer / "sub").mkdir(parents=True)
    ts = yum_app()
    for index, (key, path) in enumerate(sorted(rpms.items())):
        relative = f"sub/{path.name}" if index % 2 else path.name
        shutil.copy(path, peer / relative)
        response = ts.client.simulate_put(f"/repository/yum-hosted/{relative}", body=path.read_bytes(),
                                          headers=ts.admin)
        assert response.status_code == 201
    subprocess.run(["createrepo_c", "--quiet", "--no-database", str(peer)], check=True)
    BackgroundWork.of(ts.stowage).run_pending(job=JOB, due_only=False)
    ours = tmp_path / "ours"
    (ours / "repodata").mkdir(parents=True)
    repomd = ts.client.simulate_get("/repository/yum-hosted/repodata/repomd.xml").content
    (ours / "repodata" / "repomd.xml").write_bytes(repomd)
    for href in re.findall(r'href="(repodata/[^"]+)"', repomd.decode()):
        (ours / href).write_bytes(ts.client.simulate_get(f"/repository/yum-hosted/{href}").content)

    expected, actual = load(peer), load(ours)
    assert sorted(actual) == sorted(expected)  # the same package set at the same locations
    for href, fields in expected.items():
        assert actual[href] == fields, href
    # The weak dependencies really are there (not both sides empty).
    hello = actual["sub/hello-1.1-1.noarch.rpm"]
    assert hello["recommends"] and hello["supplements"] and hello["enhances"]
    assert ("hello-old", "LT", "0", "1", None, False) in hello["obsoletes"]
    assert actual["hello-1.0-1.noarch.rpm"]["suggests"]
    # The document types repomd.xml lists agree too.
    peer_types = set(re.findall(r'<data type="(\w+)"', (peer / "repodata" / "repomd.xml").read_text()))
    assert set(re.findall(r'<data type="(\w+)"', repomd.decode())) == peer_types
