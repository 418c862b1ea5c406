"""Core's dependency-confusion guard through a PyPI group: a version the merged index hides is not
downloadable either; ``allowProxyNames`` (regex or glob) frees both the same way."""

from __future__ import annotations

import urllib3

from pypi_kit import hosted_proxy_group, make_wheel, twine_upload

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
WHEEL = "packages/acme-tool/9.0/acme_tool-9.0-py3-none-any.whl"


def test_a_hidden_proxy_version_is_neither_listed_nor_downloadable(
        stowage_factory, live_server_factory, pypiserver_factory, client_env, dists, tmp_path):
    upstream_dir = tmp_path / "upstream"
    upstream_dir.mkdir()
    make_wheel(upstream_dir, "acme-tool", "9.0")  # a public namesake of a private project
    upstream = pypiserver_factory(upstream_dir)
    app = stowage_factory()
    hosted_proxy_group(app, f"{upstream.url}/simple/")
    for name, pattern in (("pypi-group-re", "re:acme-t[o]+l"), ("pypi-group-glob", "acme-*")):
        app.create_repository(name=name, format="pypi", type="group",
                              group={"memberNames": ["pypi-hosted", "pypi-proxy"], "allowProxyNames": [pattern]})
    server = live_server_factory(app)
    twine_upload(f"{server.url}/repository/pypi-hosted/", [make_wheel(dists, "acme-tool", "1.0")], client_env,
                 app.admin_password)

    def versions(group: str) -> list[str]:
        return urllib3.request("GET", f"{server.url}/repository/{group}/simple/acme-tool/", headers=JSON).json()["versions"]

    assert versions("pypi-group") == ["1.0"]
    hidden = urllib3.request("GET", f"{server.url}/repository/pypi-group/{WHEEL}")
    assert hidden.status == 404, hidden.data
    # the proxy itself still serves it: the guard is a group rule
    assert urllib3.request("GET", f"{server.url}/repository/pypi-proxy/simple/acme-tool/", headers=JSON).status == 200
    for group in ("pypi-group-re", "pypi-group-glob"):
        assert versions(group) == ["1.0", "9.0"]
        freed = urllib3.request("GET", f"{server.url}/repository/{group}/{WHEEL}")
        assert freed.status == 200 and freed.data[:2] == b"PK"
    # once cached by the proxy, the guarded group still refuses it (a cached copy is no way around)
    assert urllib3.request("GET", f"{server.url}/repository/pypi-group/{WHEEL}").status == 404
