"""Issue 10 item 8: a published tarball must be a complete gzip + tar stream whose package/package.json names the
published name and version; anything else is a 400 that stores nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from npm_kit import NpmClient, installed_version, make_package
from test_npm_hosted import admin_headers, http, new_project, publish_document, tarball_bytes
from test_npm_rest_upload import curl_upload

NAME, VERSION = "@acme/cut", "1.0.0"


@pytest.fixture
def packed(tmp_path: Path, npm_client: NpmClient) -> bytes:
    """A tarball made by ``npm pack`` itself."""
    source = make_package(tmp_path / "src", NAME, VERSION, body="module.exports = 'x'.repeat(4096);\n" * 50)
    out = npm_client.run("pack", "--json", "--pack-destination", str(tmp_path), cwd=source)
    return (tmp_path / json.loads(out.stdout)[0]["filename"]).read_bytes()


@pytest.mark.parametrize("cut", [1, 8, 200])
def test_a_tarball_with_its_last_bytes_cut_is_refused_by_publish(npm_server, packed, cut):
    hosted = f"{npm_server.url}/repository/npm-hosted"
    before = npm_server.test_stowage.stored_state()
    truncated = packed[:-cut]  # the attacker sends matching shasum and integrity: only the archive can tell
    status, headers, body = http("PUT", f"{hosted}/@acme%2fcut", body=publish_document(NAME, VERSION, truncated),
                                 headers=admin_headers(npm_server))
    assert status == 400, body
    assert headers["Content-Type"].startswith("application/json")
    assert "not a valid gzip'd tar" in json.loads(body)["error"]
    assert npm_server.test_stowage.stored_state() == before
    assert http("GET", f"{hosted}/@acme%2fcut")[0] == 404


def test_a_truncated_tarball_is_refused_by_the_rest_upload(tmp_path, npm_server, packed):
    """Checked before it becomes a blob: not even an unreferenced blob file is left for compaction."""
    before = npm_server.test_stowage.stored_state()
    cut = tmp_path / "cut.tgz"
    cut.write_bytes(packed[:-8])
    status, body = curl_upload(npm_server, "npm-hosted", f"npm.asset=@{cut}")
    assert status == 400 and "not a valid gzip'd tar" in body
    assert npm_server.test_stowage.stored_state() == before
    store = npm_server.test_stowage.stowage.blob_store("default")
    assert list(store.tmp_dir.iterdir()) == []


def test_package_json_must_match_and_be_sane(npm_server):
    hosted = f"{npm_server.url}/repository/npm-hosted"
    before = npm_server.test_stowage.stored_state()
    for tarball, words in [(tarball_bytes(NAME, "2.0.0"), "says @acme/cut@2.0.0"),
                           (tarball_bytes("@acme/other", VERSION), "says @acme/other@1.0.0"),
                           (b"\x1f\x8b" + b"\x00" * 30, "not a valid gzip'd tar")]:
        status, _, body = http("PUT", f"{hosted}/@acme%2fcut", body=publish_document(NAME, VERSION, tarball),
                               headers=admin_headers(npm_server))
        assert status == 400 and words in json.loads(body)["error"], body
    deep = b'{"a":' * 5000 + b"1" + b"}" * 5000
    status, _, body = http("PUT", f"{hosted}/@acme%2fcut", body=deep, headers=admin_headers(npm_server))
    assert status == 400 and "nested too deeply" in json.loads(body)["error"]
    assert npm_server.test_stowage.stored_state() == before


def test_the_complete_tarball_still_publishes_and_installs(tmp_path, npm_server, npm_client, packed):
    hosted = f"{npm_server.url}/repository/npm-hosted"
    status, _, body = http("PUT", f"{hosted}/@acme%2fcut", body=publish_document(NAME, VERSION, packed),
                           headers=admin_headers(npm_server))
    assert status in (200, 201), body
    project = new_project(tmp_path, dependencies={NAME: VERSION})
    npm_client.run("install", cwd=project)
    assert installed_version(project, NAME) == VERSION
