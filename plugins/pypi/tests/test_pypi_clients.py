"""End to end with real clients: twine uploads, pip and uv install through hosted, proxy and group
repositories; the proxy's upstream is a real PyPI-compatible server on loopback (pypiserver, HTML) or a
second Stowage (PEP 691 JSON with PEP 658 metadata)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import urllib3

from pypi_kit import hosted_proxy_group, make_sdist, make_wheel, pip, twine_upload, uv


def installed(target: Path) -> dict[str, str]:
    """{project: version} of what pip/uv put in ``target``."""
    found = {}
    for info in target.glob("*.dist-info"):
        name, _, version = info.name[: -len(".dist-info")].rpartition("-")
        found[name.replace("_", "-").lower()] = version
    return found


def test_hosted_and_group_with_twine_pip_uv_and_a_pypiserver_upstream(
        stowage_factory, live_server_factory, pypiserver_factory, recorder, client_env, dists, tmp_path):
    upstream_dir = tmp_path / "upstream"
    upstream_dir.mkdir()
    make_wheel(upstream_dir, "upstream-only", "3.0", requires_python=">=3.8")
    make_wheel(upstream_dir, "acme-tool", "9.0")  # a public namesake of a private project
    upstream = pypiserver_factory(upstream_dir)

    app = stowage_factory()
    hosted_proxy_group(app, f"{upstream.url}/simple/")
    app.app.add_middleware(recorder)
    server = live_server_factory(app)
    hosted = f"{server.url}/repository/pypi-hosted/"
    group_index = f"{server.url}/repository/pypi-group/simple/"

    uploads = []
    for version in ("1.0", "1.5", "2.0"):
        uploads += [make_wheel(dists, "acme-tool", version, requires_python=">=3.8"),
                    make_sdist(dists, "acme-tool", version)]
    twine_upload(hosted, uploads, client_env, app.admin_password)
    again = twine_upload(hosted, uploads[:1], client_env, app.admin_password, check=False)
    assert again.returncode != 0 and "400" in again.stdout + again.stderr

    # Resolution uses the PEP 658 metadata file; no wheel is downloaded while resolving.
    recorder.paths.clear()
    report = tmp_path / "report.json"
    resolved = pip(client_env, "install", "-v", "--dry-run", "--ignore-installed", "--no-deps", "--report",
                   str(report), "--index-url", group_index, "acme-tool>=1,<2")
    assert "Obtaining dependency information for acme-tool" in resolved.stdout
    assert ".whl.metadata" in resolved.stdout
    assert json.loads(report.read_text())["install"][0]["metadata"]["version"] == "1.5"
    assert any(p.endswith("acme_tool-1.5-py3-none-any.whl.metadata") for p in recorder.paths)
    assert not any(p.endswith(".whl") for p in recorder.paths), recorder.paths

    target = tmp_path / "t-range"
    pip(client_env, "install", "--no-deps", "--target", str(target), "--index-url", group_index, "acme-tool>=1,<2")
    assert installed(target) == {"acme-tool": "1.5"}

    target = tmp_path / "t-uv"
    uv(client_env, "pip", "install", "--no-config", "--python", sys.executable, "--target", str(target),
       "--index-url", group_index, "acme-tool==1.0")
    assert installed(target) == {"acme-tool": "1.0"}

    # --require-hashes with the hash of the uploaded wheel.
    wheel = next(p for p in uploads if p.name == "acme_tool-1.0-py3-none-any.whl")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"acme-tool==1.0 --hash=sha256:{hashlib.sha256(wheel.read_bytes()).hexdigest()}\n")
    downloaded = tmp_path / "downloaded"
    pip(client_env, "download", "--no-deps", "--only-binary", ":all:", "--require-hashes", "-r", str(requirements),
        "-d", str(downloaded), "--index-url", group_index)
    assert [p.name for p in downloaded.iterdir()] == [wheel.name]
    assert (downloaded / wheel.name).read_bytes() == wheel.read_bytes()

    # Dependency-confusion guard: the group hides the upstream's acme-tool 9.0.
    page = urllib3.request("GET", f"{group_index}acme-tool/",
                           headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
    assert page["versions"] == ["1.0", "1.5", "2.0"]
    assert not any("9.0" in f["filename"] for f in page["files"])

    # PEP 592: a yanked release is skipped unless pinned exactly.
    yank = urllib3.request("PUT", f"{server.url}/service/rest/v1/pypi/pypi-hosted/projects/acme-tool/versions/2.0/yank",
                           json={"reason": "bad build"}, headers=app.admin)
    assert yank.status == 200
    target = tmp_path / "t-latest"
    pip(client_env, "install", "--no-deps", "--target", str(target), "--index-url", group_index, "acme-tool")
    assert installed(target) == {"acme-tool": "1.5"}
    target = tmp_path / "t-pinned"
    pinned = pip(client_env, "install", "--no-deps", "--target", str(target), "--index-url", group_index,
                 "acme-tool==2.0")
    assert installed(target) == {"acme-tool": "2.0"}
    assert "yanked" in (pinned.stdout + pinned.stderr).lower()

    # A project only the upstream has installs through the group, with pip and uv; its links point
    # through the group.
    upstream_page = urllib3.request("GET", f"{group_index}upstream-only/").data.decode()
    assert 'href="../../packages/upstream-only/3.0/upstream_only-3.0-py3-none-any.whl#sha256=' in upstream_page
    target = tmp_path / "t-upstream"
    pip(client_env, "install", "--no-deps", "--target", str(target), "--index-url", group_index, "upstream-only")
    assert installed(target) == {"upstream-only": "3.0"}

    # The upstream goes away: the cached copies still install (fresh client caches).
    upstream.stop()
    for name, tool in (("pip-down", "pip"), ("uv-down", "uv")):
        client_env = dict(client_env, PIP_CACHE_DIR=str(tmp_path / f"cache-{name}"),
                          UV_CACHE_DIR=str(tmp_path / f"uv-cache-{name}"))
        target = tmp_path / name
        if tool == "pip":
            pip(client_env, "install", "--no-deps", "--target", str(target), "--index-url", group_index,
                "upstream-only==3.0")
        else:
            uv(client_env, "pip", "install", "--no-config", "--python", sys.executable, "--target", str(target),
               "--index-url", group_index, "upstream-only==3.0")
        assert installed(target) == {"upstream-only": "3.0"}


def test_proxy_of_a_json_upstream_keeps_core_metadata_and_yank(stowage_factory, live_server_factory, recorder,
                                                               client_env, dists, tmp_path):
    origin = stowage_factory()
    origin.create_repository(name="origin", format="pypi", type="hosted")
    origin_server = live_server_factory(origin)
    files = [make_wheel(dists, "jsonpkg", "1.0", requires_python=">=3.7"), make_wheel(dists, "jsonpkg", "1.1")]
    twine_upload(f"{origin_server.url}/repository/origin/", files, client_env, origin.admin_password)
    urllib3.request("PUT", f"{origin_server.url}/service/rest/v1/pypi/origin/files/{files[1].name}/yank",
                    json={"reason": "oops"}, headers=origin.admin)

    app = stowage_factory()
    app.create_repository(name="pypi-proxy", format="pypi", type="proxy",
                          proxy={"remoteUrl": f"{origin_server.url}/repository/origin/", "metadataMaxAge": 0})
    app.app.add_middleware(recorder)
    server = live_server_factory(app)
    index_url = f"{server.url}/repository/pypi-proxy/simple/"

    page = urllib3.request("GET", f"{index_url}jsonpkg/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
    cached_page = app.stowage.catalog.get_asset("pypi-proxy", "simple/jsonpkg/")
    assert cached_page.content_type.startswith("application/vnd.pypi.simple.v1+json")  # JSON was preferred
    entries = {f["filename"]: f for f in page["files"]}
    assert entries[files[0].name]["requires-python"] == ">=3.7"
    assert entries[files[0].name]["core-metadata"]["sha256"]
    assert entries[files[1].name]["yanked"] == "oops"
    assert entries[files[0].name]["url"] == f"../../packages/jsonpkg/1.0/{files[0].name}"
    assert entries[files[0].name]["hashes"]["sha256"] == hashlib.sha256(files[0].read_bytes()).hexdigest()

    recorder.paths.clear()
    target = tmp_path / "t"
    result = pip(client_env, "install", "-v", "--no-deps", "--target", str(target), "--index-url", index_url, "jsonpkg")
    assert installed(target) == {"jsonpkg": "1.0"}  # 1.1 is yanked
    assert "Obtaining dependency information for jsonpkg" in result.stdout
    assert f"/repository/pypi-proxy/packages/jsonpkg/1.0/{files[0].name}.metadata" in recorder.paths
    metadata = app.stowage.catalog.get_asset("pypi-proxy", f"packages/jsonpkg/1.0/{files[0].name}.metadata")
    assert metadata.blob_sha256 == entries[files[0].name]["core-metadata"]["sha256"]

    target = tmp_path / "t-uv"
    uv(client_env, "pip", "install", "--no-config", "--python", sys.executable, "--target", str(target),
       "--index-url", index_url, "jsonpkg==1.1")
    assert installed(target) == {"jsonpkg": "1.1"}

    root = urllib3.request("GET", index_url, headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
    assert root["projects"] == [{"name": "jsonpkg"}]
    # A file the upstream does not list is not fetched from anywhere.
    assert urllib3.request("GET", f"{server.url}/repository/pypi-proxy/packages/jsonpkg/1.0/evil-1.0.whl").status == 404
