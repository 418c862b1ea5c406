"""Cleanup on a hosted yum repository (rpm version order, repodata regenerated), checked with dnf."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings, strategies as st

from stowage.cleanup import run_cleanup
from stowage.testing.retention import assert_version_order
from stowage_yum.regeneration import pending_roots
from stowage_yum.vercmp import compare_evr, rpmvercmp
from test_yum_dnf import curl_upload, dnf, http_get, wait_for

V1 = "/service/rest/v1"
SYSTEM_PYTHON = "/usr/bin/python3"


def rpm_bindings() -> bool:
    return shutil.which(SYSTEM_PYTHON) is not None and subprocess.run(
        [SYSTEM_PYTHON, "-c", "import rpm"], capture_output=True).returncode == 0


PAIRS = [("1.0", "1.0"), ("1.0", "2.0"), ("1.2", "1.10"), ("1.0a", "1.0"), ("1.0~rc1", "1.0"), ("1.0^git1", "1.0"),
         ("1.0^git1", "1.0.1"), ("1.0~rc1", "1.0~rc2"), ("1.el9", "2.el9"), ("1.el9_2", "1.el9"), ("001", "1"),
         ("a", "1"), ("1.0.0", "1.0"), ("2.0.1a", "2.0.1"), ("5.5p1", "5.5p10"), ("10b2", "10a1"), ("1_0", "1.0"),
         ("1.0~", "1.0"), ("1.0^", "1.0"), ("xyz.4", "xyz.10"), ("1.0~rc1^git1", "1.0~rc1")]


@pytest.mark.skipif(not rpm_bindings(), reason="rpm's Python bindings (python3-rpm) are not installed")
def test_vercmp_agrees_with_rpm_itself():
    script = ("import json, rpm, sys\n"
              "print(json.dumps([rpm.labelCompare(('0', a, '1'), ('0', b, '1')) for a, b in json.load(sys.stdin)]))")
    cases = PAIRS + [(b, a) for a, b in PAIRS]
    answer = subprocess.run([SYSTEM_PYTHON, "-c", script], input=json.dumps(cases), capture_output=True, text=True,
                            check=True)
    assert [rpmvercmp(a, b) for a, b in cases] == json.loads(answer.stdout)


@settings(max_examples=25, deadline=None)  # each example asks rpm in a subprocess: many pairs, few examples
@given(st.lists(st.tuples(st.text("0123456789.~^_ab", min_size=1, max_size=8), st.text("0123456789.~^_ab", min_size=1, max_size=8)),
                min_size=1, max_size=200))
def test_vercmp_agrees_with_rpm_on_generated_versions(pairs):
    if not rpm_bindings():
        pytest.skip("rpm's Python bindings (python3-rpm) are not installed")
    script = ("import json, rpm, sys\n"
              "print(json.dumps([rpm.labelCompare(('0', a, '1'), ('0', b, '1')) for a, b in json.load(sys.stdin)]))")
    answer = subprocess.run([SYSTEM_PYTHON, "-c", script], input=json.dumps(pairs), capture_output=True, text=True,
                            check=True)
    assert [rpmvercmp(a, b) for a, b in pairs] == json.loads(answer.stdout)


def test_epoch_wins_over_version():
    assert compare_evr(("1", "1.0", "1"), ("0", "9.0", "1")) == 1
    assert compare_evr(("", "1.0", "1"), ("0", "1.0", "1")) == 0


def test_yum_versions_follow_rpm(stowage_app):
    assert_version_order(stowage_app.stowage, "yum", ["1.0~rc1-1", "1.0-1", "1.0-2.el9", "1.0-10", "1.2-1",
                                                      "1.10-1", "1.10^git3-1"])


def test_retain_one_leaves_dnf_one_version_and_consistent_repodata(yum_app, live_server_factory, rpm_builder,
                                                                  tmp_path):
    ts = yum_app(delay=0.1)
    server = live_server_factory(ts)
    for version, release in (("1.2", "1"), ("1.10", "1"), ("1.10", "2.el9")):
        built = rpm_builder("tool", version, release)
        assert curl_upload(server.url, "yum-hosted", built, f"Packages/{built.name}").stdout == "201"
    wait_for(lambda: not pending_roots(ts.stowage.repository("yum-hosted")))
    baseurl = f"{server.url}/repository/yum-hosted/"
    listed = dnf(tmp_path, baseurl, "list", "--showduplicates", "tool").stdout
    assert len(re.findall(r"^tool\.noarch", listed, flags=re.MULTILINE)) == 3, listed

    policy = {"name": "yum-newest", "format": "yum", "retain": 1}
    assert ts.client.simulate_post(f"{V1}/cleanup-policies", json=policy, headers=ts.admin).status_code == 201
    preview = ts.client.simulate_post(f"{V1}/cleanup-policies/preview", json=dict(policy, repository="yum-hosted"),
                                      headers=ts.admin).json
    assert sorted(i["version"] for i in preview["items"]) == ["1.10-1", "1.2-1"]
    config = ts.client.simulate_get(f"{V1}/repositories/yum/hosted/yum-hosted", headers=ts.admin).json
    config["cleanup"] = {"policyNames": ["yum-newest"]}
    assert ts.client.simulate_put(f"{V1}/repositories/yum/hosted/yum-hosted", json=config,
                                  headers=ts.admin).status_code == 204
    assert run_cleanup(ts.stowage).removed == 2
    wait_for(lambda: not pending_roots(ts.stowage.repository("yum-hosted")))

    shutil.rmtree(tmp_path / "dnf-cache", ignore_errors=True)
    listed = dnf(tmp_path, baseurl, "list", "--showduplicates", "tool").stdout
    assert re.findall(r"^tool\.noarch\s+(\S+)", listed, flags=re.MULTILINE) == ["1.10-2.el9"], listed
    # every repodata file repomd.xml lists has the checksum it states, and primary.xml the served RPM's
    ns = {"repo": "http://linux.duke.edu/metadata/repo", "common": "http://linux.duke.edu/metadata/common"}
    repomd = ET.fromstring(http_get(f"{baseurl}repodata/repomd.xml"))
    primary = None
    for data in repomd.findall("repo:data", ns):
        href = data.find("repo:location", ns).get("href")
        body = http_get(f"{baseurl}{href}")
        checksum = data.find("repo:checksum", ns)
        assert hashlib.new(checksum.get("type"), body).hexdigest() == checksum.text, href
        if data.get("type") == "primary":
            primary = body
    import gzip

    packages = ET.fromstring(gzip.decompress(primary) if primary[:2] == b"\x1f\x8b" else primary)
    listed_rpms = {p.find("common:location", ns).get("href"): p.find("common:checksum", ns).text
                   for p in packages.findall("common:package", ns)}
    assert list(listed_rpms) == ["Packages/tool-1.10-2.el9.noarch.rpm"]
    served = http_get(f"{baseurl}Packages/tool-1.10-2.el9.noarch.rpm")
    assert hashlib.sha256(served).hexdigest() == listed_rpms["Packages/tool-1.10-2.el9.noarch.rpm"]
