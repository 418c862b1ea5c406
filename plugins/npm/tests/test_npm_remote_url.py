"""``proxy.remoteUrl = "@npm-registry@"`` becomes the registry npm on this machine is configured to use."""

from __future__ import annotations

import shutil

import pytest

from stowage_npm.upstream import DEFAULT_REGISTRY, expand_remote_url


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_placeholder_uses_npm_config(monkeypatch, tmp_path, stowage_factory):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:4873/mirror")
    assert expand_remote_url("@npm-registry@") == "http://127.0.0.1:4873/mirror/"
    assert expand_remote_url("https://example.org/npm/") == "https://example.org/npm/"
    app = stowage_factory(repositories=[{"name": "npm-proxy", "format": "npm", "type": "proxy",
                                         "proxy": {"remoteUrl": "@npm-registry@", "metadataMaxAge": 60}}])
    assert app.stowage.repository("npm-proxy").config.proxy.remote_url == "http://127.0.0.1:4873/mirror/"


def test_placeholder_falls_back_without_npm(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert expand_remote_url("@npm-registry@") == DEFAULT_REGISTRY
