"""Issue 13: asset fields and checksums, raw components, search parameters, read-only mode, status checks,
upload specs and the scripting endpoints, each checked against Nexus 3.91's document where it has a schema."""

from __future__ import annotations

import hashlib
import io
from datetime import datetime

import pytest

from nexus_schema import validate
from stowage.checksums import backfill_all
from stowage.models import Component
from stowage.testing.harness import basic_auth

V1 = "/service/rest/v1"


def _nullable(value):
    """Nexus answers null for an unset optional field though its document has no ``nullable``: drop
    nulls before validating (their presence is checked separately)."""
    if isinstance(value, dict):
        return {k: _nullable(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_nullable(v) for v in value]
    return value


@pytest.fixture
def app(stowage_app):
    stowage_app.create_repository(name="files", format="raw", type="hosted")
    return stowage_app


def _put(app, path, body, repo="files", **headers):
    answer = app.client.simulate_put(f"/repository/{repo}/{path}", body=body, headers={**app.admin, **headers})
    assert answer.status_code == 201, answer.text
    return answer


def _assets(app, repo="files"):
    answer = app.client.simulate_get(f"{V1}/assets", params={"repository": repo}, headers=app.admin)
    assert answer.status_code == 200
    validate(f"{V1}/assets", _nullable(answer.json))
    return answer.json["items"]


# -- assets ------------------------------------------------------------------------------------------

def test_assets_carry_every_nexus_field_with_checksums_computed_at_store_time(app, monkeypatch):
    store = app.stowage.repository("files").blob_store
    opened = []
    original_open = type(store).open
    monkeypatch.setattr(type(store), "open", lambda self, sha: opened.append(sha) or original_open(self, sha))
    body = b"build output\n" * 1000
    _put(app, "builds/1.0/app.tar.gz", body)
    [asset] = _assets(app)
    assert asset["checksum"] == {name: hashlib.new(name, body).hexdigest()
                                 for name in ("md5", "sha1", "sha256", "sha512")}
    assert opened == []  # hashed while written, never read back for it
    assert asset["path"] == "builds/1.0/app.tar.gz" and asset["fileSize"] == len(body)
    assert asset["downloadUrl"].endswith("/repository/files/builds/1.0/app.tar.gz")
    assert asset["contentType"] == "application/gzip" or asset["contentType"].startswith("application/")
    assert asset["uploader"] == "admin" and asset["uploaderIp"] == "127.0.0.1"
    assert asset["lastDownloaded"] is None and asset["blobStoreName"] == "default"
    for key in ("lastModified", "blobCreated"):
        parsed = datetime.fromisoformat(asset[key])
        assert parsed.tzinfo is not None and abs(parsed.timestamp() - datetime.now().timestamp()) < 120
    assert app.client.simulate_get(f"{V1}/assets/{asset['id']}", headers=app.admin).json == asset


def test_blobs_stored_before_checksums_existed_are_backfilled_once(app):
    _put(app, "old.bin", b"old content")
    _put(app, "older.bin", b"older content")
    catalog = app.stowage.catalog
    with catalog.transaction():
        catalog._execute("UPDATE blobs SET md5 = NULL, sha1 = NULL, sha512 = NULL")
    sha = hashlib.sha256(b"old content").hexdigest()
    assert catalog.blob_checksums([sha])[sha] == {"sha256": sha}
    by_path = {a["path"]: a for a in _assets(app)}  # answering backfills lazily
    assert by_path["old.bin"]["checksum"]["sha1"] == hashlib.sha1(b"old content").hexdigest()
    assert catalog.blob_checksums([sha])[sha]["md5"] == hashlib.md5(b"old content").hexdigest()
    with catalog.transaction():
        catalog._execute("UPDATE blobs SET md5 = NULL, sha1 = NULL, sha512 = NULL")
    assert backfill_all(app.stowage) == "checksums computed for 2 blob(s)"
    assert backfill_all(app.stowage) == "checksums computed for 0 blob(s)"


# -- raw components ------------------------------------------------------------------------------------

def test_raw_files_are_components_as_in_nexus(app):
    _put(app, "dist/linux/tool-1.0.tgz", b"linux")
    _put(app, "readme.txt", b"root file")
    components = app.client.simulate_get(f"{V1}/components", params={"repository": "files"}, headers=app.admin)
    validate(f"{V1}/components", _nullable(components.json))
    found = {(c["group"], c["name"], c["version"]) for c in components.json["items"]}
    assert found == {("/dist/linux", "dist/linux/tool-1.0.tgz", None), ("/", "readme.txt", None)}

    by_name = app.client.simulate_get(f"{V1}/search", params={"repository": "files",
                                                              "name": "dist/linux/tool-1.0.tgz"}).json["items"]
    assert [c["assets"][0]["path"] for c in by_name] == ["dist/linux/tool-1.0.tgz"]
    by_group = app.client.simulate_get(f"{V1}/search/assets", params={"group": "/dist/linux"}).json["items"]
    assert [a["path"] for a in by_group] == ["dist/linux/tool-1.0.tgz"]

    component_id = by_name[0]["id"]
    assert app.client.simulate_delete(f"{V1}/components/{component_id}", headers=app.admin).status_code == 204
    assert app.client.simulate_get("/repository/files/dist/linux/tool-1.0.tgz").status_code == 404
    assert app.client.simulate_get(f"{V1}/components/{component_id}", headers=app.admin).status_code == 404


def test_raw_component_upload_takes_directory_and_numbered_assets(app):
    form = (b"--b\r\nContent-Disposition: form-data; name=\"raw.directory\"\r\n\r\n/drop/zone/\r\n"
            b"--b\r\nContent-Disposition: form-data; name=\"raw.asset1\"; filename=\"a.txt\"\r\n\r\nAAA\r\n"
            b"--b\r\nContent-Disposition: form-data; name=\"raw.asset1.filename\"\r\n\r\nrenamed.txt\r\n"
            b"--b\r\nContent-Disposition: form-data; name=\"raw.asset2\"; filename=\"b.txt\"\r\n\r\nBBB\r\n"
            b"--b--\r\n")
    answer = app.client.simulate_post(f"{V1}/components", params={"repository": "files"}, body=form,
                                      headers={**app.admin, "Content-Type": "multipart/form-data; boundary=b"})
    assert answer.status_code == 204, answer.text
    assert app.client.simulate_get("/repository/files/drop/zone/renamed.txt").text == "AAA"
    items = app.client.simulate_get(f"{V1}/search", params={"group": "/drop/zone"}).json["items"]
    assert sorted(c["name"] for c in items) == ["drop/zone/b.txt", "drop/zone/renamed.txt"]


# -- search --------------------------------------------------------------------------------------------

@pytest.fixture
def versions(app):
    """pypi components whose string order differs from PEP 440's."""
    app.create_repository(name="py", format="pypi", type="hosted")
    repository = app.stowage.repository("py")
    for version in ("1.9", "1.10", "2.0rc1", "1.10.post1"):
        body = f"tool-{version}".encode()
        repository.store(f"packages/tool/{version}/tool-{version}.tar.gz", io.BytesIO(body), length=len(body),
                         component=Component(repository="py", format="pypi", name="tool", version=version))
    return app


def test_search_sorts_by_the_formats_version_order_and_filters_prereleases(versions):
    def names(**params):
        answer = versions.client.simulate_get(f"{V1}/search", params={"repository": "py", **params})
        assert answer.status_code == 200, answer.text
        validate(f"{V1}/search", _nullable(answer.json))
        return [c["version"] for c in answer.json["items"]]

    assert names(sort="version") == ["2.0rc1", "1.10.post1", "1.10", "1.9"]  # newest first by default
    assert names(sort="version", direction="asc") == ["1.9", "1.10", "1.10.post1", "2.0rc1"]
    assert names(sort="version", prerelease="false") == ["1.10.post1", "1.10", "1.9"]
    assert names(prerelease="true") == ["2.0rc1"]
    download = versions.client.simulate_get(f"{V1}/search/assets/download",
                                            params={"repository": "py", "sort": "version", "prerelease": "false"})
    assert download.status_code == 302
    assert download.headers["location"].endswith("/repository/py/packages/tool/1.10.post1/tool-1.10.post1.tar.gz")


def test_search_paging_in_version_order_visits_every_match_once(versions):
    seen, token = [], None
    while True:
        params = {"repository": "py", "sort": "version"} | ({"continuationToken": token} if token else {})
        page = versions.client.simulate_get(f"{V1}/search/assets", params=params).json
        seen += [a["path"] for a in page["items"]]
        token = page["continuationToken"]
        if token is None:
            break
    assert len(seen) == len(set(seen)) == 4
    bad = versions.client.simulate_get(f"{V1}/search/assets", params={"sort": "version", "continuationToken": "x"})
    assert bad.status_code == 400 and bad.json["message"]


def test_search_by_every_checksum_and_download_semantics(app):
    _put(app, "one.txt", b"one")
    _put(app, "two.txt", b"two")
    for name in ("sha1", "sha256", "md5", "sha512"):
        digest = hashlib.new(name, b"one").hexdigest()
        found = app.client.simulate_get(f"{V1}/search/assets", params={name: digest}).json["items"]
        assert [a["path"] for a in found] == ["one.txt"], name
        found = app.client.simulate_get(f"{V1}/search", params={name: digest.upper()}).json["items"]
        assert [c["name"] for c in found] == ["one.txt"], name
    download = f"{V1}/search/assets/download"
    one = app.client.simulate_get(download, params={"sha1": hashlib.sha1(b"one").hexdigest()})
    assert one.status_code == 302 and one.headers["location"].endswith("/repository/files/one.txt")
    none = app.client.simulate_get(download, params={"md5": hashlib.md5(b"three").hexdigest()})
    assert none.status_code == 404 and none.json["message"]
    several = app.client.simulate_get(download, params={"repository": "files"})
    assert several.status_code == 400 and "sort" in several.json["message"]
    first = app.client.simulate_get(download, params={"repository": "files", "sort": "name", "direction": "desc"})
    assert first.status_code == 302 and first.headers["location"].endswith("/two.txt")


def test_format_specific_search_parameters(app):
    app.create_repository(name="npmh", format="npm", type="hosted")
    npm = app.stowage.repository("npmh")
    for scope, version in (("cwiq", "1.0.0-beta.2"), ("cwiq", "1.0.0"), ("other", "2.0.0")):
        body = f"{scope}{version}".encode()
        npm.store(f"@{scope}/lib/-/lib-{version}.tgz", io.BytesIO(body), length=len(body),
                  component=Component(repository="npmh", format="npm", group=scope, name="lib", version=version))
    _put(app, "lib", b"a raw file named lib")  # name=lib in another format: npm.scope must exclude it

    def versions(**params):
        return [c["version"] for c in app.client.simulate_get(f"{V1}/search", params=params).json["items"]]

    assert versions(**{"npm.scope": "cwiq", "sort": "version"}) == ["1.0.0", "1.0.0-beta.2"]
    assert versions(**{"npm.scope": "cwiq", "prerelease": "true"}) == ["1.0.0-beta.2"]
    assert versions(name="lib", **{"npm.scope": "cwiq", "version": "1.0.0"}) == ["1.0.0"]
    assert versions(name="lib", **{"docker.imageName": "lib"}) == []  # no docker repository holds it
    assert versions(name="x", **{"npm.scope": "cwiq", "yum.name": "y"}) == []
    assert app.client.simulate_get(f"{V1}/search", params={"prerelease": "maybe"}).status_code == 400


# -- read-only mode ------------------------------------------------------------------------------------

def test_freeze_refuses_writes_everywhere_and_release_restores_them(app, stowage_factory):
    _put(app, "kept.txt", b"kept")
    client, admin = app.client, app.admin
    assert client.simulate_get(f"{V1}/read-only", headers=admin).json == {
        "frozen": False, "summaryReason": "", "systemInitiated": False}
    assert client.simulate_post(f"{V1}/read-only/freeze").status_code == 401
    assert client.simulate_post(f"{V1}/read-only/freeze", headers=admin).status_code == 204
    assert client.simulate_post(f"{V1}/read-only/freeze", headers=admin).status_code == 404
    state = client.simulate_get(f"{V1}/read-only", headers=admin).json
    assert state["frozen"] is True and "admin" in state["summaryReason"] and state["systemInitiated"] is False

    # another process over the same catalog (another worker or node) obeys the same freeze
    other = stowage_factory(data_dir=app.stowage.settings.data_path)
    for target in (app, other):
        refused = target.client.simulate_put("/repository/files/new.txt", body=b"x", headers=admin)
        assert refused.status_code == 503
        deleted = target.client.simulate_delete("/repository/files/kept.txt", headers=admin)
        assert deleted.status_code == 503
        created = target.client.simulate_post(f"{V1}/repositories/raw/hosted", headers=admin, json={
            "name": "later", "online": True, "storage": {"blobStoreName": "default",
                                                         "strictContentTypeValidation": True}})
        assert created.status_code == 503 and created.json["message"]
        assert target.client.simulate_get("/repository/files/kept.txt").text == "kept"
        assert target.client.simulate_get(f"{V1}/search/assets", params={"repository": "files"}).status_code == 200
    check = client.simulate_get(f"{V1}/status/check", headers=admin).json
    assert check["Read-Only Detector"]["healthy"] is False

    assert other.client.simulate_post(f"{V1}/read-only/release", headers=admin).status_code == 204
    assert client.simulate_post(f"{V1}/read-only/release", headers=admin).status_code == 404
    _put(app, "new.txt", b"x")
    assert app.stowage.catalog.get_repository("later") is None


# -- status, upload specs, scripts ---------------------------------------------------------------------

def test_status_check_reports_nexus_shaped_results(app):
    assert app.client.simulate_get(f"{V1}/status/check").status_code == 401
    answer = app.client.simulate_get(f"{V1}/status/check", headers=app.admin)
    assert answer.status_code == 200
    validate(f"{V1}/status/check", answer.json)
    assert set(answer.json) == {"Blob Stores", "Database", "Available Disk Space", "File Descriptors",
                                "Read-Only Detector"}
    assert answer.json["Database"]["healthy"] is True and answer.json["Blob Stores"]["healthy"] is True


def test_upload_specs_list_the_component_upload_fields_of_each_format(app):
    answer = app.client.simulate_get(f"{V1}/formats/upload-specs", headers=app.admin)
    validate(f"{V1}/formats/upload-specs", answer.json)
    specs = {spec["format"]: spec for spec in answer.json}
    assert {"raw", "pypi", "npm", "yum"} <= set(specs) and "docker" not in specs
    raw = app.client.simulate_get(f"{V1}/formats/raw/upload-specs", headers=app.admin).json
    assert raw == specs["raw"] and raw["multipleUpload"] is True
    assert [f["name"] for f in raw["componentFields"]] == ["directory"]
    assert [f["name"] for f in raw["assetFields"]] == ["filename"]
    missing = app.client.simulate_get(f"{V1}/formats/docker/upload-specs", headers=app.admin)
    assert missing.status_code == 404 and missing.json["message"]


def test_scripts_answer_as_a_nexus_with_scripting_disabled(app):
    client, admin = app.client, app.admin
    assert client.simulate_get(f"{V1}/script", headers=admin).json == []
    created = client.simulate_post(f"{V1}/script", headers=admin,
                                   json={"name": "s", "type": "groovy", "content": "return 1"})
    assert created.status_code == 410
    assert created.json["message"] == "Creating and updating scripts is disabled"
    assert client.simulate_put(f"{V1}/script/s", headers=admin, json={}).status_code == 410
    missing = client.simulate_get(f"{V1}/script/s", headers=admin)
    assert missing.status_code == 404 and missing.json["message"]
    assert client.simulate_post(f"{V1}/script/s/run", headers=admin, body="").status_code == 404
    assert client.simulate_get(f"{V1}/script", headers=basic_auth("nobody", "x")).status_code == 401


# -- routing rules -------------------------------------------------------------------------------------

def test_routing_rules_crud_and_enforcement_on_proxies_and_groups(app, fault_upstream):
    client, admin = app.client, app.admin
    fault_upstream.put("com/cwiq/app.jar", b"internal")
    fault_upstream.put("org/public/lib.jar", b"public")
    rule = {"name": "internal-only", "description": "no public artifacts", "mode": "BLOCK",
            "matchers": ["^/org/.*", ".*/forbidden/.*"]}
    assert client.simulate_post(f"{V1}/routing-rules", json=rule).status_code == 401
    assert client.simulate_post(f"{V1}/routing-rules", json=rule, headers=admin).status_code == 204
    assert client.simulate_post(f"{V1}/routing-rules", json=rule, headers=admin).status_code == 400
    bad = client.simulate_post(f"{V1}/routing-rules", headers=admin,
                               json={"name": "bad", "mode": "SOMETIMES", "matchers": ["(unclosed"]})
    assert bad.status_code == 400 and {e["id"] for e in bad.json} == {"PARAMETER mode", "PARAMETER matchers[0]"}
    listed = client.simulate_get(f"{V1}/routing-rules", headers=admin)
    validate(f"{V1}/routing-rules", listed.json)
    assert listed.json == [rule]

    proxy = {"name": "upstream", "online": True, "storage": {"blobStoreName": "default",
             "strictContentTypeValidation": True}, "proxy": {"remoteUrl": fault_upstream.url,
             "contentMaxAge": 1440, "metadataMaxAge": 1440}, "negativeCache": {"enabled": False, "timeToLive": 1},
             "httpClient": {}, "routingRule": "nope"}
    missing = client.simulate_post(f"{V1}/repositories/raw/proxy", json=proxy, headers=admin)
    assert missing.status_code == 400 and missing.json[0]["id"] == "PARAMETER routingRule"
    proxy["routingRule"] = "internal-only"
    assert client.simulate_post(f"{V1}/repositories/raw/proxy", json=proxy, headers=admin).status_code == 201
    got = client.simulate_get(f"{V1}/repositories/raw/proxy/upstream", headers=admin).json
    assert got["routingRuleName"] == "internal-only" and "routingRule" not in got
    app.create_repository(name="all", format="raw", type="group", group={"memberNames": ["files", "upstream"]})

    assert client.simulate_get("/repository/upstream/com/cwiq/app.jar").text == "internal"
    blocked = client.simulate_get("/repository/upstream/org/public/lib.jar")
    assert blocked.status_code == 404 and "routing rule" in blocked.text
    assert client.simulate_get("/repository/all/org/public/lib.jar").status_code == 404  # through the group
    assert fault_upstream.count("org/public/lib.jar") == 0

    # ALLOW inverts it; the change applies at once
    rule["mode"] = "ALLOW"
    assert client.simulate_put(f"{V1}/routing-rules/internal-only", json=rule, headers=admin).status_code == 204
    assert client.simulate_get("/repository/upstream/org/public/lib.jar").text == "public"
    assert client.simulate_get("/repository/upstream/com/cwiq/other.jar").status_code == 404

    in_use = client.simulate_delete(f"{V1}/routing-rules/internal-only", headers=admin)
    assert in_use.status_code == 400 and "upstream" in in_use.json["message"]
    got.pop("routingRuleName")
    assert client.simulate_put(f"{V1}/repositories/raw/proxy/upstream", json=got, headers=admin).status_code == 204
    assert client.simulate_delete(f"{V1}/routing-rules/internal-only", headers=admin).status_code == 204
    assert client.simulate_get(f"{V1}/routing-rules/internal-only", headers=admin).status_code == 404


def test_large_blobs_get_the_same_checksums_from_the_helper_thread(app):
    import os
    import threading

    from stowage.blobstore.base import INLINE_DIGEST_BYTES

    before = set(threading.enumerate())
    body = os.urandom(INLINE_DIGEST_BYTES * 2 + 12345)
    store = app.stowage.repository("files").blob_store
    with store.writer(("md5", "sha1", "sha512")) as writer:  # named: computed while writing, not after
        for start in range(0, len(body), 1 << 20):
            writer.write(body[start:start + (1 << 20)])
        info = writer.commit()
    assert info.digests == {name: hashlib.new(name, body).hexdigest() for name in ("md5", "sha1", "sha256", "sha512")}
    with store.writer(("sha512",)) as abandoned:  # aborted half-way: its helper thread ends too
        for start in range(0, len(body), 1 << 20):
            abandoned.write(body[start:start + (1 << 20)])
    dropped = store.writer(("sha1",))  # never committed nor closed, just forgotten
    dropped.write(body)
    dropped.abort()
    del dropped
    import gc

    gc.collect()
    assert not [t for t in set(threading.enumerate()) - before if t.name == "blob-digests" and t.is_alive()]


def test_the_search_page_takes_nexus_parameters_too(app):
    _put(app, "lib", b"x")
    page = app.client.simulate_get("/search", params={"name": "lib", "docker.imageName": "other", "sha1": "0" * 40},
                                   headers=app.admin)
    assert page.status_code == 200
