"""The proxy engine asks the format one question per miss (FormatHandler.upstream_request): pypi reads
the remote's project page once for the URL and the sha256 together, not once per part."""

from __future__ import annotations

import hashlib

import urllib3

from pypi_kit import hosted_proxy_group, make_wheel
from stowage_pypi.plugin import PypiHandler


def test_one_upstream_question_per_miss(stowage_factory, live_server_factory, pypiserver_factory, tmp_path,
                                        monkeypatch):
    upstream_dir = tmp_path / "upstream"
    upstream_dir.mkdir()
    wheel = make_wheel(upstream_dir, "acme-lib", "1.0")
    upstream = pypiserver_factory(upstream_dir)
    app = stowage_factory()
    hosted_proxy_group(app, f"{upstream.url}/simple/")
    server = live_server_factory(app)
    proxy = f"{server.url}/repository/pypi-proxy"
    assert urllib3.request("GET", f"{proxy}/simple/acme-lib/").status == 200  # the page is cached

    questions, listed = [], []
    original_request, original_listed = PypiHandler.upstream_request, PypiHandler._listed
    monkeypatch.setattr(PypiHandler, "upstream_request",
                        lambda self, *a: questions.append(a[1]) or original_request(self, *a))
    monkeypatch.setattr(PypiHandler, "_listed", lambda self, *a: listed.append(a[1]) or original_listed(self, *a))
    for name in ("upstream_url", "expected_digests", "upstream_headers"):  # never asked separately
        monkeypatch.setattr(PypiHandler, name, lambda *a, name=name: (_ for _ in ()).throw(AssertionError(name)))
    path = f"packages/acme-lib/1.0/{wheel.name}"
    download = urllib3.request("GET", f"{proxy}/{path}")
    assert download.status == 200 and hashlib.sha256(download.data).digest() == hashlib.sha256(wheel.read_bytes()).digest()
    # one question for the file, one read of its project page (metadataMaxAge=0: the page itself is
    # revalidated once, its own single question)
    assert sorted(questions) == [path, "simple/acme-lib/"] and listed == [path]
