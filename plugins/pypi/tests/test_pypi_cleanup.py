"""Cleanup policies on a hosted PyPI repository, checked with twine and pip."""

from __future__ import annotations

import urllib3

from pypi_kit import make_sdist, make_wheel, pip, twine_upload
from stowage.cleanup import run_cleanup
from stowage.testing.retention import assert_version_order

V1 = "/service/rest/v1"


def test_pypi_versions_follow_pep_440(stowage_app):
    assert_version_order(stowage_app.stowage, "pypi",
                         ["0.9", "1.0.dev1", "1.0a1", "1.0b2", "1.0rc1", "1.0", "1.0.post1", "1.1", "1.10",
                          "2!0.1"],
                         prereleases=["1.0.dev1", "1.0a1", "1.0b2", "1.0rc1"])


def test_retain_one_leaves_pip_only_the_newest(stowage_factory, live_server_factory, client_env, dists, tmp_path):
    ts = stowage_factory(repositories=[{"name": "pypi-hosted", "format": "pypi", "type": "hosted"}])
    server = live_server_factory(ts)
    hosted = f"{server.url}/repository/pypi-hosted/"
    uploads = []
    for version in ("1.0", "1.5", "1.10", "2.0rc1", "2.0"):  # upload order is not version order below
        uploads += [make_wheel(dists, "acme-lib", version), make_sdist(dists, "acme-lib", version)]
    twine_upload(hosted, uploads[2:] + uploads[:2], client_env, ts.admin_password)
    policy = {"name": "pypi-newest", "format": "pypi", "retain": 1}
    assert ts.client.simulate_post(f"{V1}/cleanup-policies", json=policy, headers=ts.admin).status_code == 201
    preview = ts.client.simulate_post(f"{V1}/cleanup-policies/preview", json=dict(policy, repository="pypi-hosted"),
                                      headers=ts.admin).json
    assert sorted(i["version"] for i in preview["items"]) == ["1.0", "1.10", "1.5", "2.0rc1"]
    removed_paths = [a["path"] for i in preview["items"] for a in i["assets"]]
    assert len([p for p in removed_paths if not p.endswith(".metadata")]) == 8
    config = ts.client.simulate_get(f"{V1}/repositories/pypi/hosted/pypi-hosted", headers=ts.admin).json
    config["cleanup"] = {"policyNames": ["pypi-newest"]}
    assert ts.client.simulate_put(f"{V1}/repositories/pypi/hosted/pypi-hosted", json=config,
                                  headers=ts.admin).status_code == 204

    assert run_cleanup(ts.stowage).removed == 4

    index = f"{server.url}/repository/pypi-hosted/simple/"
    versions = pip(client_env, "index", "versions", "--pre", "--index-url", index, "acme-lib").stdout
    assert "Available versions: 2.0\n" in versions, versions
    page = urllib3.request("GET", f"{index}acme-lib/").data.decode()
    assert "acme_lib-2.0-py3-none-any.whl" in page and "1.5" not in page and "2.0rc1" not in page
    for path in removed_paths:
        assert urllib3.request("GET", f"{hosted}{path}").status == 404, path
    target = tmp_path / "target"
    pip(client_env, "install", "--no-deps", "--target", str(target), "--index-url", index, "acme-lib")
    assert any(p.name.startswith("acme_lib-2.0.dist-info") for p in target.iterdir())
