"""``stowage verify`` on hosted npm: packument versions against tarball assets."""

from __future__ import annotations

from test_npm_hosted import admin_headers, http, publish_document, tarball_bytes

from stowage.plugin import BlobInfo
from stowage.verify import run_verify


def test_verify_notices_a_version_whose_tarball_is_gone_and_an_unlisted_tarball(npm_server):
    url = f"{npm_server.url}/repository/npm-hosted/checked"
    status, _, body = http("PUT", url, body=publish_document("checked", "1.0.0", tarball_bytes("checked", "1.0.0")),
                           headers=admin_headers(npm_server))
    assert status in (200, 201), body
    stowage = npm_server.test_stowage.stowage
    assert run_verify(stowage, deep=True).ok

    catalog = stowage.catalog
    tarball = catalog.get_asset("npm-hosted", "checked/-/checked-1.0.0.tgz")
    catalog.delete_asset("npm-hosted", tarball.path)  # a version whose tarball is lost
    stray = BlobInfo(sha256=tarball.blob_sha256, size=tarball.size)
    stowage.repository("npm-hosted").record("stray/-/stray-9.9.9.tgz", stray)  # a tarball nobody lists
    report = run_verify(stowage)
    assert report.lines() == [
        "npm-hosted checked/-/checked-1.0.0.tgz: the packument of checked lists version 1.0.0, whose tarball is "
        "not in the repository",
        "npm-hosted stray/-/stray-9.9.9.tgz: tarball is listed by no packument version"]
