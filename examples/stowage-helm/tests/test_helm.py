"""The helm plugin, tested as a third party tests it: the shipped test kit (``stowage_factory``,
``live_server_factory``, ``fault_upstream``) and curl; index.yaml is read with PyYAML as Helm reads it.
(No Helm client is packaged for Debian or PyPI.)"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

import yaml


def make_chart(directory: Path, name: str, version: str, *, chart_yaml: str | None = None) -> Path:
    """A packaged chart as ``helm package`` makes it: ``<name>/Chart.yaml`` and a template, gzipped."""
    directory.mkdir(exist_ok=True)
    path = directory / f"{name}-{version}.tgz"
    files = {f"{name}/Chart.yaml": chart_yaml if chart_yaml is not None else
             f"apiVersion: v2\nname: {name}\nversion: {version}\ndescription: the {name} chart\n",
             f"{name}/templates/configmap.yaml": "kind: ConfigMap\n"}
    with tarfile.open(path, "w:gz") as archive:
        for member, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def curl(*args: str) -> tuple[int, bytes]:
    """(HTTP status, body) of one curl call."""
    result = subprocess.run(["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", *args], capture_output=True,
                            check=True, timeout=60)
    body, _, status = result.stdout.rpartition(b"\n")
    return int(status), body


def versions(url: str) -> dict[str, list[str]]:
    status, body = curl(f"{url}/index.yaml")
    assert status == 200, body
    index = yaml.safe_load(body)
    assert index["apiVersion"] == "v1"
    return {name: [entry["version"] for entry in entries] for name, entries in index["entries"].items()}


def test_hosted_put_chartmuseum_and_components_uploads(stowage_factory, live_server_factory, tmp_path):
    app = stowage_factory()
    app.create_repository(name="helm-hosted", format="helm", type="hosted")
    server = live_server_factory(app)
    url, auth = f"{server.url}/repository/helm-hosted", ("-u", f"admin:{app.admin_password}")
    one, two, three = (make_chart(tmp_path, "acme", v) for v in ("1.0.0", "1.1.0", "2.0.0-rc.1"))
    assert curl(*auth, "--upload-file", str(one), f"{url}/acme-1.0.0.tgz")[0] == 201
    status, body = curl(*auth, "--data-binary", f"@{two}", f"{url}/api/charts")  # ChartMuseum
    assert status == 201 and json.loads(body) == {"saved": True}
    status, body = curl(*auth, "-F", f"helm.asset=@{three}",
                        f"{server.url}/service/rest/v1/components?repository=helm-hosted")
    assert status == 204, body
    assert versions(url) == {"acme": ["2.0.0-rc.1", "1.1.0", "1.0.0"]}
    index = yaml.safe_load(curl(f"{url}/index.yaml")[1])
    entry = index["entries"]["acme"][-1]
    assert entry["urls"] == ["acme-1.0.0.tgz"] and entry["digest"] == hashlib.sha256(one.read_bytes()).hexdigest()
    status, body = curl(f"{url}/{entry['urls'][0]}")  # relative to the repository, as Helm resolves it
    assert status == 200 and body == one.read_bytes()
    # refused, and nothing changes: not a chart, a path that is not its name, a second upload of a version
    before = app.stored_state()  # rows and blobs: each chart is checked before it becomes a blob
    junk = tmp_path / "junk.tgz"
    junk.write_bytes(b"not a chart")
    assert curl(*auth, "--upload-file", str(junk), f"{url}/junk-1.0.0.tgz")[0] == 400
    assert curl(*auth, "-F", f"helm.asset=@{junk}", f"{server.url}/service/rest/v1/components?repository=helm-hosted"
                )[0] == 400
    huge = tmp_path / "huge.tgz"
    huge.write_bytes(b"\0" * (10 * 1024 * 1024 + 1))
    assert curl(*auth, "--data-binary", f"@{huge}", f"{url}/api/charts")[0] == 413
    bad = make_chart(tmp_path / "bad", "bad", "1.0.0", chart_yaml="name: Bad Name\nversion: x\n")
    assert curl(*auth, "--data-binary", f"@{bad}", f"{url}/api/charts")[0] == 400
    assert curl(*auth, "--upload-file", str(one), f"{url}/other-1.0.0.tgz")[0] == 400
    assert curl(*auth, "--upload-file", str(one), f"{url}/acme-1.0.0.tgz")[0] == 400  # allow once
    assert curl("--upload-file", str(one), f"{url}/")[0] == 401
    assert versions(url) == {"acme": ["2.0.0-rc.1", "1.1.0", "1.0.0"]}
    assert app.stored_state() == before
    assert curl(*auth, "-X", "DELETE", f"{url}/acme-1.1.0.tgz")[0] == 204
    assert versions(url) == {"acme": ["2.0.0-rc.1", "1.0.0"]}


def test_proxy_and_group_merge_and_guard_downloads(stowage_factory, live_server_factory, fault_upstream, tmp_path):
    upstream_charts = {name: make_chart(tmp_path, *name.rsplit("-", 1)) for name in ("acme-9.0.0", "public-1.0.0")}
    entries = {name.rsplit("-", 1)[0]: [{"name": name.rsplit("-", 1)[0], "version": name.rsplit("-", 1)[1],
                                         "urls": [f"{fault_upstream.url}/charts/{path.name}"]}]
               for name, path in upstream_charts.items()}
    fault_upstream.put("index.yaml", yaml.safe_dump({"apiVersion": "v1", "entries": entries}))
    for path in upstream_charts.values():
        fault_upstream.put(f"charts/{path.name}", path.read_bytes())
    app = stowage_factory()
    app.create_repository(name="helm-hosted", format="helm", type="hosted")
    app.create_repository(name="helm-proxy", format="helm", type="proxy",
                          proxy={"remoteUrl": fault_upstream.url + "/", "metadataMaxAge": 0})
    for name, allowed in (("helm-group", []), ("helm-group-re", ["re:ac+me"]), ("helm-group-glob", ["ac*"])):
        app.create_repository(name=name, format="helm", type="group",
                              group={"memberNames": ["helm-hosted", "helm-proxy"], "allowProxyNames": allowed})
    server = live_server_factory(app)
    repo = f"{server.url}/repository"
    assert curl("-u", f"admin:{app.admin_password}", "--upload-file", str(make_chart(tmp_path / "private", "acme", "1.0.0")),
                f"{repo}/helm-hosted/")[0] == 201
    assert versions(f"{repo}/helm-proxy") == {"acme": ["9.0.0"], "public": ["1.0.0"]}
    status, body = curl(f"{repo}/helm-proxy/charts/public-1.0.0.tgz")  # URLs below the remote are proxied
    assert status == 200 and body == upstream_charts["public-1.0.0"].read_bytes()
    # the guard: acme is a hosted chart, so the proxy's acme 9.0.0 is neither listed nor downloadable
    assert versions(f"{repo}/helm-group") == {"acme": ["1.0.0"], "public": ["1.0.0"]}
    assert curl(f"{repo}/helm-group/charts/acme-9.0.0.tgz")[0] == 404
    assert curl(f"{repo}/helm-group/charts/public-1.0.0.tgz")[0] == 200
    for group in ("helm-group-re", "helm-group-glob"):
        assert versions(f"{repo}/{group}") == {"acme": ["9.0.0", "1.0.0"], "public": ["1.0.0"]}
        status, body = curl(f"{repo}/{group}/charts/acme-9.0.0.tgz")
        assert status == 200 and body == upstream_charts["acme-9.0.0"].read_bytes()
    assert curl(f"{repo}/helm-group/charts/acme-9.0.0.tgz")[0] == 404  # cached by the proxy: still hidden
    assert curl("-u", f"admin:{app.admin_password}", "--upload-file", str(upstream_charts["public-1.0.0"]),
                f"{repo}/helm-group/")[0] in (400, 405)


def test_the_plugin_stays_small_and_uses_only_the_public_api():
    """A whole chart repository format in under 250 lines, importing nothing of Stowage but stowage.plugin."""
    source = Path(__file__).parent.parent / "stowage_helm"
    lines = [line for path in source.glob("*.py") for line in path.read_text().splitlines()]
    assert len(lines) < 250
    imports = [line for line in lines if line.startswith(("import stowage", "from stowage"))]
    assert imports and all(line.startswith("from stowage.plugin import") for line in imports), imports
