"""Proxy and group repositories against a second Stowage on loopback, driven by the real npm client."""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from npm_kit import NpmClient, installed_version, make_package
from test_npm_hosted import http, new_project

ADVISORY = {"id": 1179, "url": "https://example.invalid/advisories/1179", "title": "Prototype pollution",
            "severity": "high", "vulnerable_versions": "<2.0.0", "cwe": ["CWE-1321"],
            "cvss": {"score": 7.5, "vectorString": None}}


class AdvisoryServer(BaseHTTPRequestHandler):
    """A local stand-in for the public registry's audit service: knows one vulnerable package."""

    def do_POST(self) -> None:  # noqa: N802
        import gzip

        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if self.path != "/-/npm/v1/security/advisories/bulk":
            self.send_error(404)
            return
        wanted = json.loads(body)
        answer = json.dumps({n: [ADVISORY] for n in wanted if n == "upstream-only"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def do_GET(self) -> None:  # noqa: N802
        self.send_error(404)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def advisories():
    server = ThreadingHTTPServer(("127.0.0.1", 0), AdvisoryServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture
def chain(tmp_path, stowage_factory, live_server_factory, advisories):
    """upstream Stowage (hosted + an audit-answering proxy, as a group) <- downstream proxy <- group."""
    upstream = live_server_factory(stowage_factory(repositories=[
        {"name": "up-hosted", "format": "npm", "type": "hosted"},
        {"name": "up-audit", "format": "npm", "type": "proxy", "proxy": {"remoteUrl": advisories}},
        {"name": "up-group", "format": "npm", "type": "group", "group": {"memberNames": ["up-hosted", "up-audit"]}},
    ]))
    publisher = NpmClient(tmp_path / "publisher", f"{upstream.url}/repository/up-hosted/")
    publisher.auth(publisher.registry, user="admin", password=upstream.test_stowage.admin_password)
    for name, version, deps in [("upstream-only", "1.0.0", {}), ("upstream-only", "1.2.0", {}),
                                ("upstream-dep", "2.0.0", {"upstream-only": "^1.0.0"}),
                                ("@acme/util", "9.9.9", {}), ("@acme/other", "1.0.0", {})]:
        publisher.run("publish", cwd=make_package(tmp_path / "up-src", name, version, dependencies=deps))
    downstream = live_server_factory(stowage_factory(repositories=[
        {"name": "npm-hosted", "format": "npm", "type": "hosted"},
        {"name": "npm-proxy", "format": "npm", "type": "proxy",
         "proxy": {"remoteUrl": f"{upstream.url}/repository/up-group/", "metadataMaxAge": 0}},
        {"name": "npm-group", "format": "npm", "type": "group",
         "group": {"memberNames": ["npm-hosted", "npm-proxy"]}},
    ]))
    client = NpmClient(tmp_path / "home", f"{downstream.url}/repository/npm-group/")
    client.auth(f"{downstream.url}/repository/npm-hosted/", user="admin",
                password=downstream.test_stowage.admin_password)
    client.run("publish", registry=f"{downstream.url}/repository/npm-hosted/",
               cwd=make_package(tmp_path / "src", "@acme/util", "1.0.0"))
    return upstream, downstream, client


def test_upstream_package_installs_through_group_and_survives_upstream_stop(tmp_path, chain):
    upstream, downstream, client = chain
    project = new_project(tmp_path, dependencies={"upstream-dep": "^2.0.0", "@acme/util": "^1.0.0"})
    client.run("install", cwd=project)
    assert installed_version(project, "upstream-dep") == "2.0.0"
    assert installed_version(project, "upstream-only") == "1.2.0"
    assert installed_version(project, "@acme/util") == "1.0.0"  # the hosted one, never upstream's 9.9.9
    lock = json.loads((project / "package-lock.json").read_text())
    resolved = lock["packages"]["node_modules/upstream-only"]["resolved"]
    assert resolved == f"{downstream.url}/repository/npm-group/upstream-only/-/upstream-only-1.2.0.tgz"

    upstream.stop()
    shutil.rmtree(project / "node_modules")
    shutil.rmtree(client.home / "cache")
    client.run("ci", cwd=project)
    assert installed_version(project, "upstream-only") == "1.2.0"
    upstream.stop = lambda: None  # stopped already; the fixture's teardown must not stop it twice


def test_abbreviated_document_comes_from_upstream_abbreviated(tmp_path, chain):
    upstream, downstream, client = chain
    status, headers, body = http("GET", f"{downstream.url}/repository/npm-proxy/upstream-only",
                                 headers={"Accept": "application/vnd.npm.install-v1+json"})
    corgi = json.loads(body)
    assert status == 200 and set(corgi) == {"name", "modified", "dist-tags", "versions"}
    assert corgi["versions"]["1.0.0"]["dist"]["tarball"] == \
        f"{downstream.url}/repository/npm-proxy/upstream-only/-/upstream-only-1.0.0.tgz"
    cached = downstream.stowage.catalog.get_asset("npm-proxy", "-/corgi/upstream-only")
    assert cached is not None and cached.size < len(http("GET", f"{upstream.url}/repository/up-group/upstream-only")[2])


def test_dependency_confusion_guard(tmp_path, chain):
    upstream, downstream, client = chain
    view = json.loads(client.run("view", "@acme/util", "versions", "--json").stdout)
    assert view == "1.0.0" or view == ["1.0.0"]
    status, _, _ = http("GET", f"{downstream.url}/repository/npm-group/@acme/util/-/util-9.9.9.tgz")
    assert status == 404
    # the scope @acme is claimed by the hosted member: upstream's @acme/other is hidden too...
    assert client.run("view", "@acme/other", check=False).returncode != 0
    # ...unless the group allows it
    stowage = downstream.stowage
    stowage.save_repository(stowage.parse_repository(
        {"name": "npm-group", "format": "npm", "type": "group",
         "group": {"memberNames": ["npm-hosted", "npm-proxy"], "allowProxyNames": ["@acme/other"]}}))
    assert client.run("view", "@acme/other", "version").stdout.strip() == "1.0.0"
    # allowProxyNames means the same in every format (core's guard): a re: pattern and a glob free both
    # the merged packument and the tarball download; without them both stay hidden, the download with
    # npm's JSON error body
    tarball = f"{downstream.url}/repository/npm-group/@acme/util/-/util-9.9.9.tgz"
    status, content_type, body = http("GET", tarball)
    assert status == 404 and "json" in content_type["Content-Type"] and "error" in json.loads(body)
    for pattern in ("re:@acme/ut[il]+", "@acme/u*"):
        stowage.save_repository(stowage.parse_repository(
            {"name": "npm-group", "format": "npm", "type": "group",
             "group": {"memberNames": ["npm-hosted", "npm-proxy"], "allowProxyNames": [pattern]}}))
        view = json.loads(client.run("view", "@acme/util", "versions", "--json").stdout)
        assert view == ["1.0.0", "9.9.9"], pattern
        assert http("GET", tarball)[0] == 200, pattern


def test_audit_through_group_reaches_upstream_advisories(tmp_path, chain):
    upstream, downstream, client = chain
    project = new_project(tmp_path, dependencies={"upstream-only": "1.0.0"})
    client.run("install", cwd=project)
    audit = client.run("audit", "--json", cwd=project, check=False)
    report = json.loads(audit.stdout)
    assert report["vulnerabilities"]["upstream-only"]["severity"] == "high", audit.stdout
    assert audit.returncode != 0


def test_group_merges_new_hosted_versions_at_once(tmp_path, chain):
    upstream, downstream, client = chain
    client.run("publish", registry=f"{downstream.url}/repository/npm-hosted/",
               cwd=make_package(tmp_path / "src2", "@acme/util", "1.3.0"))
    project = new_project(tmp_path)
    client.run("install", "@acme/util@^1.0.0", cwd=project)
    assert installed_version(project, "@acme/util") == "1.3.0"
