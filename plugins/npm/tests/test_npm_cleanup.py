"""Cleanup policies on a hosted npm repository, checked with the real npm client."""

from __future__ import annotations

import json

from npm_kit import NpmClient, make_package
from stowage.cleanup import run_cleanup
from stowage.testing.retention import assert_version_order

V1 = "/service/rest/v1"


def test_npm_versions_follow_semver(stowage_app):
    assert_version_order(stowage_app.stowage, "npm",
                         ["0.9.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1",
                          "1.0.0", "1.0.1", "1.2.0", "1.10.0", "2.0.0"],
                         prereleases=["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1"])


def test_retain_two_releases_keeps_the_prerelease_and_moves_nothing_it_needs(tmp_path, npm_server, npm_client):
    ts = npm_server.test_stowage
    hosted = f"{npm_server.url}/repository/npm-hosted/"
    for version in ("1.0.0", "1.1.0", "2.0.0-beta.1", "2.0.0"):
        extra = ("--tag", "beta") if "-" in version else ()
        npm_client.run("publish", *extra, registry=hosted, cwd=make_package(tmp_path / "src", "lib", version))
    npm_client.run("dist-tag", "add", "lib@1.0.0", "legacy", registry=hosted)
    policy = {"name": "npm-keep-2", "format": "npm", "criteriaReleaseType": "RELEASES", "retain": 2}
    assert ts.client.simulate_post(f"{V1}/cleanup-policies", json=policy, headers=ts.admin).status_code == 201
    preview = ts.client.simulate_post(f"{V1}/cleanup-policies/preview", json=dict(policy, repository="npm-hosted"),
                                      headers=ts.admin).json
    assert [(i["name"], i["version"]) for i in preview["items"]] == [("lib", "1.0.0")]
    assert preview["items"][0]["assets"][0]["path"] == "lib/-/lib-1.0.0.tgz"
    config = ts.client.simulate_get(f"{V1}/repositories/npm/hosted/npm-hosted", headers=ts.admin).json
    config["cleanup"] = {"policyNames": ["npm-keep-2"]}
    assert ts.client.simulate_put(f"{V1}/repositories/npm/hosted/npm-hosted", json=config,
                                  headers=ts.admin).status_code == 204

    report = run_cleanup(ts.stowage)
    assert report.removed == 1 and report.removed_bytes == preview["totalBytes"]

    client = NpmClient(tmp_path / "fresh", hosted)  # an empty cache: what the server says now
    view = json.loads(client.run("view", "lib", "--json").stdout)
    assert view["versions"] == ["1.1.0", "2.0.0-beta.1", "2.0.0"]
    assert view["dist-tags"]["latest"] == "2.0.0" and view["dist-tags"]["beta"] == "2.0.0-beta.1"
    assert "legacy" not in view["dist-tags"]  # it named the removed version
    assert "1.0.0" not in view["time"]
    project = tmp_path / "project"
    project.mkdir()
    (project / "package.json").write_text(json.dumps({"name": "project", "version": "1.0.0"}))
    client.run("install", "lib@1.1.0", cwd=project)
    assert json.loads((project / "node_modules/lib/package.json").read_text())["version"] == "1.1.0"
    failed = client.run("install", "lib@1.0.0", cwd=project, check=False)
    assert failed.returncode != 0
    import urllib3

    assert urllib3.request("GET", f"{hosted}lib/-/lib-1.0.0.tgz").status == 404
