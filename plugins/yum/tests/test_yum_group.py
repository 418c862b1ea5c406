"""Group yum repositories: merge order, every version kept, caching on member changes, the
dependency-confusion guard, and every listed location downloadable through the group."""

from __future__ import annotations

import gzip
import hashlib
import re

from stowage_yum import group as group_module
from stowage.plugin import BackgroundWork
from stowage_yum.state import JOB


def put(ts, repo: str, path: str, data: bytes) -> None:
    response = ts.client.simulate_put(f"/repository/{repo}/{path}", body=data, headers=ts.admin)
    assert response.status_code == 201, response.text


def group_packages(ts, repo: str = "yum-group") -> list[tuple[str, str, str]]:
    """(name, version, href) of the group's primary.xml, each href checked downloadable with its checksum."""
    repomd = ts.client.simulate_get(f"/repository/{repo}/repodata/repomd.xml").text
    href = re.search(r'href="(repodata/[^"]+-primary.xml.gz)"', repomd).group(1)
    primary = gzip.decompress(ts.client.simulate_get(f"/repository/{repo}/{href}").content).decode()
    found = []
    for block in re.findall(r"<package .*?</package>", primary, re.S):
        name = re.search(r"<name>([^<]+)</name>", block).group(1)
        version = re.search(r'ver="([^"]+)"', block).group(1)
        location = re.search(r'<location href="([^"]+)"', block).group(1)
        checksum = re.search(r'pkgid="YES">(\w+)<', block).group(1)
        download = ts.client.simulate_get(f"/repository/{repo}/{location}")
        assert download.status_code == 200, location
        assert hashlib.sha256(download.content).hexdigest() == checksum, location
        found.append((name, version, location))
    return sorted(found)


def test_group_merges_members_keeps_every_version_and_caches(yum_app, rpms, monkeypatch):
    ts = yum_app()
    put(ts, "yum-hosted", "hello-1.0-1.noarch.rpm", rpms["hello-1.0"].read_bytes())
    put(ts, "yum-hosted2", "hello-1.1-1.noarch.rpm", rpms["hello-1.1"].read_bytes())
    put(ts, "yum-hosted2", "b/hello-1.0-1.noarch.rpm", rpms["hello-1.0"].read_bytes())  # same NEVRA again
    BackgroundWork.of(ts.stowage).run_pending(job=JOB, due_only=False)
    merges = []
    original = group_module.merge
    monkeypatch.setattr(group_module, "merge", lambda *a: merges.append(1) or original(*a))
    # hello 1.0 from the first member wins over the second member's copy; 1.1 is kept too.
    assert group_packages(ts) == [("hello", "1.0", "hello-1.0-1.noarch.rpm"),
                                  ("hello", "1.1", "hello-1.1-1.noarch.rpm")]
    assert group_packages(ts) and len(merges) == 1  # cached while no member changes
    put(ts, "yum-hosted2", "world-2.0-1.noarch.rpm", rpms["world-2.0"].read_bytes())
    BackgroundWork.of(ts.stowage).run_pending(job=JOB, due_only=False)
    assert [p[0] for p in group_packages(ts)] == ["hello", "hello", "world"]
    assert len(merges) == 2


def test_proxy_member_cannot_extend_a_hosted_name(yum_app, rpms, yum_upstream):
    """A proxy's hello 1.1 is hidden because hello is a hosted name; its other packages are merged."""
    upstream = yum_upstream([rpms["hello-1.1"], rpms["lib-3.0"]])
    proxy = {"name": "yum-proxy", "format": "yum", "type": "proxy", "proxy": {"remoteUrl": upstream.url}}
    ts = yum_app(proxy)
    put(ts, "yum-hosted", "hello-1.0-1.noarch.rpm", rpms["hello-1.0"].read_bytes())
    BackgroundWork.of(ts.stowage).run_pending(job=JOB, due_only=False)
    assert group_packages(ts) == [("hello", "1.0", "hello-1.0-1.noarch.rpm"),
                                  ("lib", "3.0", "Packages/lib-3.0-1.noarch.rpm")]
    # the hidden RPM is not downloadable through the group either (core's guard), though the proxy has it
    hidden = "Packages/hello-1.1-1.noarch.rpm"
    assert ts.client.simulate_get(f"/repository/yum-group/{hidden}").status_code == 404
    assert ts.client.simulate_get(f"/repository/yum-proxy/{hidden}").status_code == 200
    assert ts.client.simulate_get(f"/repository/yum-group/{hidden}").status_code == 404  # cached: still hidden
    for pattern in ("hel*", "re:hel+o"):  # a glob and a regex free the name in the index and downloads
        ts.stowage.save_repository(ts.stowage.parse_repository(
            {"name": "yum-group", "format": "yum", "type": "group",
             "group": {"memberNames": ["yum-hosted", "yum-hosted2", "yum-proxy"], "allowProxyNames": [pattern]}}))
        assert group_packages(ts) == [("hello", "1.0", "hello-1.0-1.noarch.rpm"),
                                      ("hello", "1.1", "Packages/hello-1.1-1.noarch.rpm"),
                                      ("lib", "3.0", "Packages/lib-3.0-1.noarch.rpm")], pattern


def test_a_location_taken_by_an_earlier_member_is_not_listed_twice(yum_app, rpms, yum_upstream):
    """The upstream lists hello 1.1 at the path where the hosted member has hello 1.0: the group would
    serve hosted's file for it, so it is left out (the index and the downloads must agree)."""
    upstream = yum_upstream([(rpms["hello-1.1"], "hello-1.0-1.noarch.rpm"), rpms["lib-3.0"]])
    proxy = {"name": "yum-proxy", "format": "yum", "type": "proxy", "proxy": {"remoteUrl": upstream.url}}
    ts = yum_app(proxy)
    ts.stowage.save_repository(ts.stowage.parse_repository(
        {"name": "yum-group", "format": "yum", "type": "group",
         "group": {"memberNames": ["yum-hosted", "yum-proxy"], "allowProxyNames": ["*"]}}))
    put(ts, "yum-hosted", "Packages/hello-1.0-1.noarch.rpm", rpms["hello-1.0"].read_bytes())
    BackgroundWork.of(ts.stowage).run_pending(job=JOB, due_only=False)
    assert group_packages(ts) == [("hello", "1.0", "Packages/hello-1.0-1.noarch.rpm"),
                                  ("lib", "3.0", "Packages/lib-3.0-1.noarch.rpm")]
