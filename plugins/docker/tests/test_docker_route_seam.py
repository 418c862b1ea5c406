"""The registry on core's route seam: core checks a docker request (permission, write policy, name policy)
before the registry's code runs, the same way on a repository's port, with path routing and under
``/repository/<repo>/v2``; client pushes are recorded as a client's (uploader), not as generated metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import urllib3

from docker_kit import skopeo
from oci_layout import Layout
from stowage.plugin import Action
from stowage_docker.blobs import UPLOADS
from test_docker_conformance import OCI_MANIFEST, digest, errors, image, push_manifest, reg  # noqa: F401

ADMIN = urllib3.make_headers(basic_auth="admin:admin123")
HTTP = urllib3.PoolManager()


def test_skopeo_push_is_recorded_as_the_clients(tmp_path: Path, docker_layout) -> None:
    server = docker_layout()
    layout = Layout(tmp_path / "img")
    layout.tag(layout.image([{"a.txt": b"A"}]), "1.0")
    skopeo("copy", f"oci:{layout.root}:1.0", f"docker://{server.hosted}/orchestrator-app:1.0",
           "--dest-creds", "admin:admin123", "--dest-tls-verify=false")
    assets = list(server.ts.stowage.catalog.iter_assets("docker-hosted", prefix="v2/orchestrator-app/"))
    kinds = {asset.path.split("/")[2] for asset in assets}
    assert kinds == {"blobs", "manifests"} and len(assets) >= 4  # config, layer, manifest by digest, tag
    for asset in assets:
        assert asset.attributes["uploader"] == "admin", asset.path
        assert asset.attributes["uploaderIp"] == "127.0.0.1", asset.path


@pytest.fixture
def frozen(stowage_factory, live_server_factory):
    """A read-only docker repository on its own port, next to a writable one."""
    from docker_kit import wait_port
    from stowage.testing.harness import free_port

    port = free_port()
    ts = stowage_factory(repositories=[
        dict(name="frozen", format="docker", type="hosted", storage={"writePolicy": "DENY"},
             docker={"httpPort": port}),
        dict(name="open", format="docker", type="hosted", namePolicy={"deny": ["cwiq-*"]})])
    server = live_server_factory(ts)
    wait_port(port)
    server.frozen_port = port
    server.ts = ts
    return server


def test_write_policy_and_name_policy_are_checked_by_core_on_every_way_in(frozen) -> None:
    main = frozen.url
    ways = [f"http://127.0.0.1:{frozen.frozen_port}/v2/app", f"{main}/v2/frozen/app",
            f"{main}/repository/frozen/v2/app"]
    for base in ways:
        for method, path in (("POST", "/blobs/uploads/"), ("PUT", "/manifests/1.0"),
                             ("DELETE", "/manifests/1.0")):
            answer = HTTP.request(method, base + path, body=b"{}", headers=ADMIN)
            assert answer.status == 403, (method, base + path, answer.status)
            error = json.loads(answer.data)["errors"][0]
            assert error["code"] == "DENIED" and "read only" in error["message"], error
            assert answer.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    for base in (f"{main}/v2/open/cwiq-app", f"{main}/repository/open/v2/cwiq-app"):
        answer = HTTP.request("POST", base + "/blobs/uploads/", headers=ADMIN)
        assert answer.status == 403 and "name policy" in json.loads(answer.data)["errors"][0]["message"]
    # an undeclared method is the spec's UNSUPPORTED, a path no endpoint has NOT_FOUND-ish NAME_UNKNOWN
    answer = HTTP.request("PATCH", f"{main}/v2/open/app/manifests/1.0", headers=ADMIN)
    assert answer.status == 405 and json.loads(answer.data)["errors"][0]["code"] == "UNSUPPORTED"
    # nothing was started or stored by any of the refusals
    catalog = frozen.ts.stowage.catalog
    assert list(catalog.list_documents(UPLOADS)) == []
    assert catalog.list_assets("frozen", prefix="v2/").items == []
    assert catalog.list_assets("open", prefix="v2/").items == []


def test_strangers_cannot_tell_missing_repositories_from_existing_ones(stowage_factory) -> None:
    ts = stowage_factory(repositories=[dict(name="dh", format="docker", type="hosted")])
    ts.stowage.security.set_anonymous_settings(False)
    for template in ("/v2/{repo}/app/manifests/1.0", "/repository/{repo}/v2/app/manifests/1.0",
                     "/repository/{repo}/v2/", "/v2/{repo}/app/blobs/uploads/"):
        method = "POST" if template.endswith("uploads/") else "GET"
        existing = ts.client.simulate_request(method, template.format(repo="dh"))
        missing = ts.client.simulate_request(method, template.format(repo="nowhere"))
        assert existing.status_code == missing.status_code == 401, template
        # the same challenge, with the scope of the name the client asked for
        assert (existing.headers["www-authenticate"].replace(":dh/", ":<repo>/")
                == missing.headers["www-authenticate"].replace(":nowhere/", ":<repo>/")), template


def test_endpoints_declare_what_each_request_does() -> None:
    from stowage_docker.endpoints import ENDPOINTS

    def action(method: str, path: str) -> tuple[str, Action | None]:
        endpoint = next(e for e in ENDPOINTS if e.match(path))
        return endpoint.name, endpoint.actions.get(method, "405")

    assert action("POST", "v2/a/b/blobs/uploads/") == ("uploads", Action.WRITE)
    assert action("PATCH", "v2/a/blobs/uploads/0123") == ("upload", Action.WRITE)
    assert action("GET", "v2/a/blobs/uploads/0123") == ("upload", Action.READ)
    assert action("HEAD", "v2/a/blobs/sha256:00") == ("blob", Action.READ)
    assert action("PUT", "v2/a/manifests/latest") == ("manifest", Action.WRITE)
    assert action("DELETE", "v2/a/manifests/latest") == ("manifest", Action.DELETE)
    assert action("PUT", "v2/a/tags/list") == ("tags", "405")
    assert action("POST", "v2/token") == ("token", None)
    assert all(not endpoint.once for endpoint in ENDPOINTS if Action.WRITE in endpoint.actions.values())


# -- the manifest PUT on core's write API ----------------------------------------------------------------
def test_manifest_over_the_limit_is_refused_whole_and_stores_nothing(reg) -> None:  # noqa: F811
    def state() -> tuple:  # through the catalog's and blob stores' own APIs: SQLite and PostgreSQL alike
        assets = sorted((a.path, a.blob_sha256) for a in reg.stowage.catalog.iter_assets("dh", prefix="v2/"))
        blobs = {name: sorted(store.digests()) for name, store in reg.stowage.blob_stores().items()}
        return assets, blobs

    manifest = dict(image(reg), annotations={"padding": "x" * (4 * 1024 * 1024)})
    before = state()
    body = json.dumps(manifest).encode()
    with_length = reg.client.simulate_put("/v2/dh/app/manifests/big", body=body,
                                          headers={**reg.auth, "Content-Type": OCI_MANIFEST})
    assert with_length.status_code == 413 and errors(with_length) == ["SIZE_INVALID"]
    assert state() == before, "a refused manifest changed what is stored"


def test_manifest_by_digest_pushed_again_under_allow_once(reg) -> None:  # noqa: F811
    """A manifest by digest is content-addressed: pushing it again is no update, even under ALLOW_ONCE,
    and the push is recorded as the client's."""
    manifest = image(reg, "once")
    d = digest(json.dumps(manifest).encode())
    for _ in range(2):
        assert push_manifest(reg, "once", "app", d, manifest).status_code == 201
    asset = reg.stowage.catalog.get_asset("once", f"v2/app/manifests/{d}")
    assert asset.attributes["uploader"] == "admin" and asset.attributes["digest"] == d
    tag = push_manifest(reg, "once", "app", "1.0", manifest)
    assert tag.status_code == 201 and tag.headers["docker-content-digest"] == d
    assert reg.stowage.catalog.get_asset("once", "v2/app/manifests/1.0").blob_sha256 == asset.blob_sha256
