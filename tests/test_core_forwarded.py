"""URLs Stowage generates follow the reverse proxy in front of it (waitress trusted-proxy settings)."""

import json

import urllib3


def _urls(server, headers):
    response = urllib3.request("GET", f"{server.url}/service/rest/v1/repositories", headers=headers)
    assert response.status == 200
    return {item["name"]: item["url"] for item in json.loads(response.data)}


def test_forwarded_headers_from_the_trusted_proxy_shape_urls(stowage_app, live_server_factory):
    stowage_app.create_repository(name="raw-hosted", format="raw", type="hosted")
    server = live_server_factory(stowage_app)
    forwarded = _urls(server, {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "nexus.example.org",
                               "X-Forwarded-For": "192.0.2.7"})
    assert forwarded["raw-hosted"] == "https://nexus.example.org/repository/raw-hosted"
    direct = _urls(server, {})
    assert direct["raw-hosted"] == f"http://127.0.0.1:{server.port}/repository/raw-hosted"


def test_forwarded_headers_from_an_untrusted_peer_are_ignored(stowage_factory, live_server_factory):
    test_stowage = stowage_factory(trusted_proxy="192.0.2.1")
    test_stowage.create_repository(name="raw-hosted", format="raw", type="hosted")
    server = live_server_factory(test_stowage)
    urls = _urls(server, {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example.org"})
    assert urls["raw-hosted"] == f"http://127.0.0.1:{server.port}/repository/raw-hosted"
