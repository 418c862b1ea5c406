"""The OCI conformance workflows (pull, push, content discovery, content management) over HTTP."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import pytest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def digest(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


@pytest.fixture
def reg(stowage_factory) -> Any:
    ts = stowage_factory(repositories=[dict(name="dh", format="docker", type="hosted"),
                                       dict(name="once", format="docker", type="hosted",
                                            storage={"writePolicy": "ALLOW_ONCE"}),
                                       dict(name="dg", format="docker", type="group",
                                            group={"memberNames": ["dh"]})])
    token = ts.client.simulate_get("/v2/token", headers=ts.admin).json["token"]
    return Reg(ts.stowage, ts.client, {"Authorization": f"Bearer {token}"})


@dataclasses.dataclass
class Reg:
    stowage: Any
    client: Any
    auth: dict[str, str]


def path_of(location: str) -> str:
    return "/" + location.split("://", 1)[1].partition("/")[2]


def push_blob(reg: Any, repo: str, name: str, data: bytes) -> str:
    d = digest(data)
    r = reg.client.simulate_post(f"/v2/{repo}/{name}/blobs/uploads/", params={"digest": d}, body=data,
                                 headers={**reg.auth, "Content-Type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    return d


def push_manifest(reg: Any, repo: str, name: str, ref: str, manifest: dict, media_type: str = OCI_MANIFEST) -> Any:
    body = json.dumps(manifest).encode()
    return reg.client.simulate_put(f"/v2/{repo}/{name}/manifests/{ref}", body=body,
                                   headers={**reg.auth, "Content-Type": media_type})


def image(reg: Any, repo: str = "dh", name: str = "app", content: bytes = b"layer") -> dict:
    config = push_blob(reg, repo, name, b"{}")
    layer = push_blob(reg, repo, name, content)
    return {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer,
                        "size": len(content)}]}


def errors(response: Any) -> list[str]:
    return [e["code"] for e in response.json["errors"]]


# -- push ------------------------------------------------------------------------------------------------
def test_chunked_upload_with_status_range_and_out_of_order_chunk(reg) -> None:
    c = reg.client
    data = b"0123456789" * 1000
    r = c.simulate_post("/v2/dh/app/blobs/uploads/", headers=reg.auth)
    assert r.status_code == 202 and r.headers["range"] == "0-0" and r.headers["docker-upload-uuid"]
    location = path_of(r.headers["location"])
    r = c.simulate_patch(location, body=data[:4000], headers={**reg.auth, "Content-Range": "0-3999"})
    assert r.status_code == 202 and r.headers["range"] == "0-3999"
    r = c.simulate_patch(location, body=data[5000:6000], headers={**reg.auth, "Content-Range": "5000-5999"})
    assert r.status_code == 416 and errors(r) == ["BLOB_UPLOAD_INVALID"] and r.headers["range"] == "0-3999"
    r = c.simulate_get(location, headers=reg.auth)
    assert r.status_code == 204 and r.headers["range"] == "0-3999"
    r = c.simulate_patch(location, body=data[4000:], headers=reg.auth)  # no Content-Range: appended (skopeo)
    assert r.status_code == 202 and r.headers["range"] == f"0-{len(data) - 1}"
    # as if another process finishes the upload: it has no running hash and must read the bytes again
    reg.stowage.blob_store("default").upload_digests.clear()
    r = c.simulate_put(location, params={"digest": digest(data)}, headers=reg.auth)
    assert r.status_code == 201 and r.headers["docker-content-digest"] == digest(data)
    r = c.simulate_get(f"/v2/dh/app/blobs/{digest(data)}", headers={**reg.auth, "Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    assert c.simulate_get(location, headers=reg.auth).status_code == 404  # the session is gone


def test_wrong_digest_is_digest_invalid_and_stores_nothing(reg) -> None:
    c = reg.client
    wrong = digest(b"something else")
    r = c.simulate_post("/v2/dh/app/blobs/uploads/", params={"digest": wrong}, body=b"payload", headers=reg.auth)
    assert r.status_code == 400 and errors(r) == ["DIGEST_INVALID"]
    r = c.simulate_post("/v2/dh/app/blobs/uploads/", headers=reg.auth)
    location = path_of(r.headers["location"])
    c.simulate_patch(location, body=b"payload", headers=reg.auth)
    r = c.simulate_put(location, params={"digest": wrong}, headers=reg.auth)
    assert r.status_code == 400 and errors(r) == ["DIGEST_INVALID"]
    for d in (wrong, digest(b"payload")):
        assert c.simulate_head(f"/v2/dh/app/blobs/{d}", headers=reg.auth).status_code == 404
    assert reg.stowage.catalog.search_assets(sha256=digest(b"payload")[7:]).items == []
    assert not list(reg.stowage.blob_store("default").tmp_dir.iterdir())


def test_sha512_upload_and_cancel(reg) -> None:
    c = reg.client
    data = b"sha512 content"
    r = c.simulate_post("/v2/dh/app/blobs/uploads/", headers=reg.auth)
    location = path_of(r.headers["location"])
    c.simulate_patch(location, body=data, headers={**reg.auth, "Content-Range": f"0-{len(data) - 1}"})
    r = c.simulate_put(location, params={"digest": digest(data, "sha512")}, headers=reg.auth)
    assert r.status_code == 201
    assert c.simulate_get(f"/v2/dh/app/blobs/{digest(data, 'sha512')}", headers=reg.auth).content == data
    r = c.simulate_post("/v2/dh/app/blobs/uploads/", headers=reg.auth)
    location = path_of(r.headers["location"])
    assert c.simulate_delete(location, headers=reg.auth).status_code == 204
    assert errors(c.simulate_get(location, headers=reg.auth)) == ["BLOB_UPLOAD_UNKNOWN"]


def test_cross_repository_mount(reg) -> None:
    c = reg.client
    d = push_blob(reg, "dh", "one", b"shared layer")
    r = c.simulate_post("/v2/dh/two/blobs/uploads/", params={"mount": d, "from": "one"}, headers=reg.auth)
    assert r.status_code == 201 and r.headers["location"].endswith(f"/v2/dh/two/blobs/{d}")
    r = c.simulate_post("/v2/once/three/blobs/uploads/", params={"mount": d, "from": "dh/one"}, headers=reg.auth)
    assert r.status_code == 201
    assert c.simulate_get(f"/v2/once/three/blobs/{d}", headers=reg.auth).content == b"shared layer"
    r = c.simulate_post("/v2/dh/two/blobs/uploads/", params={"mount": digest(b"unknown"), "from": "one"},
                        headers=reg.auth)
    assert r.status_code == 202  # not mountable: an upload session instead


def test_manifest_push_checks_references_and_policies(reg) -> None:
    manifest = image(reg)
    missing = dict(manifest, layers=[{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                      "digest": digest(b"absent"), "size": 6}])
    r = push_manifest(reg, "dh", "app", "v1", missing)
    assert r.status_code == 400 and errors(r) == ["MANIFEST_BLOB_UNKNOWN"]
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
             "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest(b"nope"), "size": 4}]}
    r = push_manifest(reg, "dh", "app", "idx", index, OCI_INDEX)
    assert r.status_code == 400 and errors(r) == ["MANIFEST_UNKNOWN"]
    r = push_manifest(reg, "dh", "app", digest(b"not this"), manifest)
    assert errors(r) == ["DIGEST_INVALID"]
    assert push_manifest(reg, "dh", "app", "v1", manifest).status_code == 201
    changed = image(reg, content=b"changed")
    assert push_manifest(reg, "dh", "app", "v1", changed).status_code == 201  # docker default: ALLOW
    once = image(reg, "once")
    assert push_manifest(reg, "once", "app", "v1", once).status_code == 201
    assert push_manifest(reg, "once", "app", "v1", once).status_code == 201  # same digest: fine
    r = push_manifest(reg, "once", "app", "v1", image(reg, "once", content=b"other"))
    assert r.status_code == 403 and errors(r) == ["DENIED"] and "ALLOW_ONCE" in r.json["errors"][0]["message"]
    r = push_manifest(reg, "dg", "app", "v1", manifest)
    assert r.status_code == 405 and errors(r) == ["UNSUPPORTED"]


# -- pull ------------------------------------------------------------------------------------------------
def test_pull_by_tag_and_digest_with_accept_lines(reg) -> None:
    c = reg.client
    manifest = image(reg)
    body = json.dumps(manifest).encode()
    r = push_manifest(reg, "dh", "app", "v1", manifest)
    d = r.headers["docker-content-digest"]
    assert d == digest(body)
    for ref in ("v1", d):
        r = c.simulate_get(f"/v2/dh/app/manifests/{ref}", headers={**reg.auth, "Accept": OCI_MANIFEST})
        assert r.status_code == 200 and r.content == body
        assert r.headers["content-type"] == OCI_MANIFEST and r.headers["docker-content-digest"] == d
    assert errors(c.simulate_get("/v2/dh/app/manifests/v9", headers=reg.auth)) == ["MANIFEST_UNKNOWN"]
    assert errors(c.simulate_get(f"/v2/dh/app/blobs/{digest(b'x')}", headers=reg.auth)) == ["BLOB_UNKNOWN"]
    # an index, asked for by a client that accepts only single manifests, answers the linux/amd64 one
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": d, "size": len(body),
         "platform": {"os": "linux", "architecture": "amd64"}}]}
    push_manifest(reg, "dh", "app", "multi", index, OCI_INDEX)
    # two Accept lines, as skopeo and podman send them: the server reads both
    r = c.simulate_get("/v2/dh/app/manifests/multi",
                       headers=[("Authorization", reg.auth["Authorization"]), ("Accept", OCI_MANIFEST),
                                ("Accept", OCI_INDEX)])
    assert r.headers["content-type"] == OCI_INDEX
    r = c.simulate_get("/v2/dh/app/manifests/multi", headers={**reg.auth, "Accept": OCI_MANIFEST})
    assert r.headers["content-type"] == OCI_MANIFEST and r.content == body


# -- content discovery -------------------------------------------------------------------------------------
def test_tags_catalog_and_referrers(reg) -> None:
    c = reg.client
    manifest = image(reg)
    subject = push_manifest(reg, "dh", "app", "v1", manifest).headers["docker-content-digest"]
    for tag in ("a", "b", "c"):
        push_manifest(reg, "dh", "app", tag, manifest)
    r = c.simulate_get("/v2/dh/app/tags/list", params={"n": "2", "last": "a"}, headers=reg.auth)
    assert r.json == {"name": "dh/app", "tags": ["b", "c"]}
    assert r.headers["link"] == '</v2/dh/app/tags/list?n=2&last=c>; rel="next"'
    push_manifest(reg, "dh", "other", "1", image(reg, name="other"))
    assert c.simulate_get("/v2/dh/_catalog", headers=reg.auth).json == {"repositories": ["dh/app", "dh/other"]}
    r = c.simulate_get("/repository/dh/v2/_catalog", params={"n": "1"}, headers=reg.auth)
    assert r.json == {"repositories": ["app"]} and r.headers["link"] == '</repository/dh/v2/_catalog?n=1&last=app>; rel="next"'
    empty = push_blob(reg, "dh", "app", b"{}")
    for artifact_type in ("application/vnd.example.sbom", "application/vnd.example.signature"):
        artifact = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
                    "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
                    "layers": [], "subject": {"mediaType": OCI_MANIFEST, "digest": subject,
                                              "size": len(json.dumps(manifest))}}
        r = push_manifest(reg, "dh", "app", digest(json.dumps(artifact).encode()), artifact)
        assert r.status_code == 201 and r.headers["oci-subject"] == subject
    r = c.simulate_get(f"/v2/dh/app/referrers/{subject}", headers=reg.auth)
    assert r.headers["content-type"] == OCI_INDEX
    assert sorted(m["artifactType"] for m in r.json["manifests"]) == ["application/vnd.example.sbom",
                                                                      "application/vnd.example.signature"]
    r = c.simulate_get(f"/v2/dg/app/referrers/{subject}", params={"artifactType": "application/vnd.example.sbom"},
                       headers=reg.auth)
    assert [m["artifactType"] for m in r.json["manifests"]] == ["application/vnd.example.sbom"]
    assert r.headers["oci-filters-applied"] == "artifactType"


# -- content management --------------------------------------------------------------------------------------
def test_delete_tag_manifest_and_blob(reg) -> None:
    c = reg.client
    manifest = image(reg)
    d = push_manifest(reg, "dh", "app", "v1", manifest).headers["docker-content-digest"]
    push_manifest(reg, "dh", "app", "v2", manifest)
    assert c.simulate_delete("/v2/dh/app/manifests/v2", headers=reg.auth).status_code == 202
    assert c.simulate_get("/v2/dh/app/tags/list", headers=reg.auth).json["tags"] == ["v1"]
    assert c.simulate_delete(f"/v2/dh/app/manifests/{d}", headers=reg.auth).status_code == 202
    assert errors(c.simulate_get("/v2/dh/app/manifests/v1", headers=reg.auth)) == ["MANIFEST_UNKNOWN"]
    layer = manifest["layers"][0]["digest"]
    assert c.simulate_delete(f"/v2/dh/app/blobs/{layer}", headers=reg.auth).status_code == 202
    assert errors(c.simulate_delete(f"/v2/dh/app/blobs/{layer}", headers=reg.auth)) == ["BLOB_UNKNOWN"]


def test_auth_flows(reg) -> None:
    c = reg.client
    assert c.simulate_get("/v2/").status_code == 401
    assert c.simulate_get("/v2/token", headers={"Authorization": "Basic YWRtaW46d3Jvbmc="}).status_code == 401
    anonymous = c.simulate_get("/v2/token").json["token"]
    r = c.simulate_post("/v2/dh/app/blobs/uploads/", headers={"Authorization": f"Bearer {anonymous}"})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer ")
    r = c.simulate_post("/v2/token", body="grant_type=password&username=admin&password=admin123",
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert c.simulate_get("/v2/", headers={"Authorization": f"Bearer {r.json['token']}"}).status_code == 200
    assert c.simulate_get("/v2/", headers={"Authorization": "Bearer dkr1.forged.sig"}).status_code == 401


def test_force_basic_auth(stowage_factory) -> None:
    ts = stowage_factory(repositories=[dict(name="basic", format="docker", type="hosted",
                                            docker={"forceBasicAuth": True})])
    r = ts.client.simulate_post("/v2/basic/app/blobs/uploads/")
    assert r.status_code == 401 and r.headers["www-authenticate"] == 'Basic realm="Stowage"'
    assert ts.client.simulate_post("/v2/basic/app/blobs/uploads/", headers=ts.admin).status_code == 202


def test_group_does_not_let_a_proxy_extend_a_hosted_image(stowage_factory) -> None:
    ts = stowage_factory(repositories=[
        dict(name="h", format="docker", type="hosted"),
        dict(name="p", format="docker", type="proxy", proxy={"remoteUrl": "http://127.0.0.1:9"}),
        dict(name="g", format="docker", type="group", group={"memberNames": ["h", "p"]})])
    token = ts.client.simulate_get("/v2/token", headers=ts.admin).json["token"]
    reg = Reg(ts.stowage, ts.client, {"Authorization": f"Bearer {token}"})
    push_manifest(reg, "h", "orchestrator-x", "1", image(reg, "h", "orchestrator-x"))
    # the proxy is unreachable: had the group asked it, these would be upstream errors, not answers
    assert ts.client.simulate_get("/v2/g/orchestrator-x/tags/list", headers=reg.auth).json["tags"] == ["1"]
    r = ts.client.simulate_get("/v2/g/orchestrator-x/manifests/2", headers=reg.auth)
    assert r.status_code == 404 and errors(r) == ["MANIFEST_UNKNOWN"]
    assert ts.client.simulate_get("/v2/g/python/manifests/3", headers=reg.auth).status_code == 502
