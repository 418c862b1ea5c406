"""Issue 10 item 8: a pushed manifest is checked against the schema of its media type, and against the blobs
and manifests it references (existing, with exactly the declared size), before anything is stored."""

from __future__ import annotations

import copy
import json
import subprocess

import pytest

from test_docker_conformance import OCI_INDEX, OCI_MANIFEST, digest, errors, image, push_manifest, reg  # noqa: F401

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def _set(path: str, value: object):
    """A change to a valid manifest: set (or with ``...`` delete) the value at a dotted path."""
    def change(manifest: dict) -> dict:
        manifest = copy.deepcopy(manifest)
        *parents, last = path.split(".")
        node = manifest
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is ...:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
        return manifest
    return change


BROKEN_IMAGES = {
    "only schemaVersion": (lambda m: {"schemaVersion": 2}, "MANIFEST_INVALID", "config"),
    "no config": (_set("config", ...), "MANIFEST_INVALID", "config descriptor"),
    "no layers": (_set("layers", ...), "MANIFEST_INVALID", "layers array"),
    "layers not an array": (_set("layers", {}), "MANIFEST_INVALID", "layers array"),
    "negative layer size": (_set("layers.0.size", -1), "MANIFEST_INVALID", "non-negative"),
    "wrong layer size": (_set("layers.0.size", 4), "MANIFEST_INVALID", "declares 4 bytes"),
    "wrong config size": (_set("config.size", 3), "MANIFEST_INVALID", "declares 3 bytes"),
    "size is a string": (_set("layers.0.size", "5"), "MANIFEST_INVALID", "non-negative integer"),
    "size is a float": (_set("layers.0.size", 5.0), "MANIFEST_INVALID", "non-negative integer"),
    "size is a boolean": (_set("config.size", True), "MANIFEST_INVALID", "non-negative integer"),
    "size past int64": (_set("layers.0.size", 2 ** 63), "MANIFEST_INVALID", "non-negative integer"),
    "no size": (_set("layers.0.size", ...), "MANIFEST_INVALID", "size"),
    "no descriptor mediaType": (_set("layers.0.mediaType", ...), "MANIFEST_INVALID", "mediaType"),
    "bad descriptor mediaType": (_set("config.mediaType", "not a type"), "MANIFEST_INVALID", "mediaType"),
    "bad digest syntax": (_set("layers.0.digest", "sha256:XYZ"), "MANIFEST_INVALID", "digest"),
    "unknown digest algorithm": (_set("layers.0.digest", "md5:" + "0" * 32), "MANIFEST_INVALID", "digest"),
    "layer not a descriptor": (_set("layers.0", "sha256:" + "0" * 64), "MANIFEST_INVALID", "descriptor"),
    "unknown layer": (_set("layers.0.digest", digest(b"absent")), "MANIFEST_BLOB_UNKNOWN", "blob unknown"),
    "schemaVersion 3": (_set("schemaVersion", 3), "MANIFEST_INVALID", "schemaVersion"),
    "schemaVersion true": (_set("schemaVersion", True), "MANIFEST_INVALID", "schemaVersion"),
    "unknown mediaType": (_set("mediaType", "text/html"), "MANIFEST_INVALID", "unsupported manifest media type"),
    "annotations not strings": (_set("annotations", {"a": 1}), "MANIFEST_INVALID", "annotations"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_IMAGES))
def test_a_broken_image_manifest_is_refused_and_stores_nothing(reg, case):  # noqa: F811
    manifest = image(reg)
    change, code, words = BROKEN_IMAGES[case]
    broken = change(manifest)
    before = state(reg)
    for reference in ("v1", digest(json.dumps(broken).encode())):
        r = push_manifest(reg, "dh", "app", reference, broken, media_type=broken.get("mediaType") or OCI_MANIFEST)
        assert r.status_code == 400, (case, r.text)
        assert r.headers["Content-Type"] == "application/json" and errors(r) == [code], r.text
        assert words in r.json["errors"][0]["message"], r.text
    assert state(reg) == before, "a refused manifest changed what is stored"
    assert push_manifest(reg, "dh", "app", "v1", manifest).status_code == 201  # the valid one still goes in


def state(reg) -> dict:
    from stowage.testing import TestStowage

    return TestStowage(stowage=reg.stowage, app=None, client=reg.client).stored_state()


@pytest.mark.parametrize("media_type", [OCI_MANIFEST, DOCKER_MANIFEST])
def test_both_image_manifest_kinds_need_config_and_layers(reg, media_type):  # noqa: F811
    manifest = dict(image(reg), mediaType=media_type)
    for field in ("config", "layers"):
        r = push_manifest(reg, "dh", "app", "v1", {k: v for k, v in manifest.items() if k != field}, media_type)
        assert r.status_code == 400 and errors(r) == ["MANIFEST_INVALID"] and field in r.text
    assert push_manifest(reg, "dh", "app", "v1", manifest, media_type).status_code == 201
    # an artifact with no layers at all is a valid OCI image manifest (``layers: []``)
    assert push_manifest(reg, "dh", "app", "v2", dict(manifest, layers=[]), media_type).status_code == 201


@pytest.mark.parametrize("media_type", [OCI_INDEX, DOCKER_LIST])
def test_indexes_need_manifests_that_exist_with_their_size(reg, media_type):  # noqa: F811
    child = image(reg)
    body = json.dumps(child).encode()
    assert push_manifest(reg, "dh", "app", "child", child).status_code == 201
    entry = {"mediaType": OCI_MANIFEST, "digest": digest(body), "size": len(body),
             "platform": {"os": "linux", "architecture": "amd64"}}
    before = state(reg)
    for broken, code in [({"schemaVersion": 2, "mediaType": media_type}, "MANIFEST_INVALID"),
                         ({"schemaVersion": 2, "mediaType": media_type, "manifests": {}}, "MANIFEST_INVALID"),
                         ({"schemaVersion": 2, "mediaType": media_type,
                           "manifests": [dict(entry, size=len(body) + 1)]}, "MANIFEST_INVALID"),
                         ({"schemaVersion": 2, "mediaType": media_type,
                           "manifests": [dict(entry, size=-len(body))]}, "MANIFEST_INVALID"),
                         ({"schemaVersion": 2, "mediaType": media_type,
                           "manifests": [dict(entry, digest=digest(b"other"))]}, "MANIFEST_UNKNOWN")]:
        r = push_manifest(reg, "dh", "app", "idx", broken, media_type)
        assert r.status_code == 400 and errors(r) == [code], r.text
    assert state(reg) == before
    good = {"schemaVersion": 2, "mediaType": media_type, "manifests": [entry]}
    assert push_manifest(reg, "dh", "app", "idx", good, media_type).status_code == 201


def test_not_json_or_too_deep_is_manifest_invalid(reg):  # noqa: F811
    for body in (b"{", b"\xff\xfe", b"[" * 5000 + b"]" * 5000, b'"a string"', b"[]"):
        r = reg.client.simulate_put("/v2/dh/app/manifests/v1", body=body,
                                    headers={**reg.auth, "Content-Type": OCI_MANIFEST})
        assert r.status_code == 400 and errors(r) == ["MANIFEST_INVALID"], r.text


def test_curl_put_of_a_broken_manifest_to_a_live_server(stowage_factory, live_server_factory):
    """The attack as it was run: raw HTTP PUTs (curl) of manifests skopeo/oras would never send."""
    ts = stowage_factory(repositories=[dict(name="dh", format="docker", type="hosted")])
    server = live_server_factory(ts)
    config = b"{}"
    put_blob = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", f"admin:{ts.admin_password}",
                               "-X", "POST", "--data-binary", "@-", "-H", "Content-Type: application/octet-stream",
                               f"{server.url}/v2/dh/app/blobs/uploads/?digest={digest(config)}"],
                              input=config, capture_output=True, check=True)
    assert put_blob.stdout == b"201"
    manifests = {
        "only-schema": {"schemaVersion": 2},
        "negative": {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                     "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config),
                                "size": -2}, "layers": []},
        "wrong-size": {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                  "digest": digest(config), "size": 1000}, "layers": []},
    }
    for tag, manifest in manifests.items():
        out = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", "-u", f"admin:{ts.admin_password}", "-X", "PUT",
                              "-H", f"Content-Type: {OCI_MANIFEST}", "--data-binary", json.dumps(manifest),
                              f"{server.url}/v2/dh/app/manifests/{tag}"], capture_output=True, check=True, text=True)
        body, status = out.stdout.rsplit("\n", 1)
        assert status == "400", (tag, out.stdout)
        assert json.loads(body)["errors"][0]["code"] == "MANIFEST_INVALID"
        got = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", f"admin:{ts.admin_password}",
                              f"{server.url}/v2/dh/app/manifests/{tag}"], capture_output=True, check=True, text=True)
        assert got.stdout == "404"
