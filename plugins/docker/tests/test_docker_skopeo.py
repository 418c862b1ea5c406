"""End to end with skopeo against real listeners: the issue's acceptance lines."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import urllib3

from docker_kit import skopeo
from oci_layout import Layout

CREDS = ("--creds", "admin:admin123")


def test_push_to_hosted_port_and_pull_through_group_port(tmp_path: Path, docker_layout) -> None:
    server = docker_layout()
    layout = Layout(tmp_path / "img")
    layout.tag(layout.image([{"a.txt": b"A"}, {"b.txt": b"B" * 5000}]), "1.0")
    skopeo("copy", f"oci:{layout.root}:1.0", f"docker://{server.hosted}/orchestrator-server:1.0",
           "--dest-creds", "admin:admin123", "--dest-tls-verify=false")
    pushed = json.loads(skopeo("inspect", "--tls-verify=false", *CREDS,
                               f"docker://{server.hosted}/orchestrator-server:1.0").stdout)
    pulled = json.loads(skopeo("inspect", "--tls-verify=false", *CREDS,
                               f"docker://{server.group}/orchestrator-server:1.0").stdout)
    assert pushed["Digest"] == pulled["Digest"]
    skopeo("copy", "--src-tls-verify=false", "--src-creds", "admin:admin123",
           f"docker://{server.group}/orchestrator-server:1.0", f"oci:{tmp_path / 'back'}:1.0")
    back = json.loads((tmp_path / "back" / "index.json").read_text())["manifests"][0]["digest"]
    assert back == pushed["Digest"]
    # path routing on the main port and Nexus's /repository/<repo>/v2 path serve the same image
    port = server.url.rsplit(":", 1)[1]
    via_path = json.loads(skopeo("inspect", "--tls-verify=false", *CREDS,
                                 f"docker://127.0.0.1:{port}/docker-group/orchestrator-server:1.0").stdout)
    assert via_path["Digest"] == pushed["Digest"]
    http = urllib3.PoolManager()
    response = http.request("HEAD", f"{server.url}/repository/docker-hosted/v2/orchestrator-server/manifests/1.0",
                            headers={**urllib3.make_headers(basic_auth="admin:admin123"),
                                     "Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert response.status == 200
    assert response.headers["Docker-Content-Digest"] == pushed["Digest"]


def test_name_policy_and_anonymous_push_are_refused(tmp_path: Path, docker_layout) -> None:
    server = docker_layout()
    layout = Layout(tmp_path / "img")
    layout.tag(layout.image([{"a.txt": b"A"}]), "1.0")
    refused = skopeo("copy", f"oci:{layout.root}:1.0", f"docker://{server.hosted}/cwiq-server:1.0",
                     "--dest-creds", "admin:admin123", "--dest-tls-verify=false", check=False)
    assert refused.returncode != 0
    assert "name policy" in refused.stderr and "cwiq-*" in refused.stderr
    anonymous = urllib3.PoolManager().request("POST", f"http://{server.hosted}/v2/orchestrator-x/blobs/uploads/")
    assert anonymous.status == 401
    assert anonymous.headers["WWW-Authenticate"].startswith(f'Bearer realm="http://{server.hosted}/v2/token"')
    assert 'scope="repository:orchestrator-x:pull,push"' in anonymous.headers["WWW-Authenticate"]
    assert json.loads(anonymous.data)["errors"][0]["code"] == "UNAUTHORIZED"
    # the group refuses pushes with a clear message
    to_group = skopeo("copy", f"oci:{layout.root}:1.0", f"docker://{server.group}/orchestrator-server:1.0",
                      "--dest-creds", "admin:admin123", "--dest-tls-verify=false", check=False)
    assert to_group.returncode != 0 and "group repository" in to_group.stderr


def test_multi_arch_round_trip_tags_pagination_and_delete(tmp_path: Path, docker_layout) -> None:
    server = docker_layout()
    layout = Layout(tmp_path / "img")
    index_digest = layout.multi_arch("multi")
    skopeo("copy", "--all", f"oci:{layout.root}:multi", f"docker://{server.hosted}/orchestrator-multi:1",
           "--dest-creds", "admin:admin123", "--dest-tls-verify=false")
    layout.tag(layout.image([{"other.txt": b"another image"}]), "single")
    skopeo("copy", f"oci:{layout.root}:single", f"docker://{server.hosted}/orchestrator-multi:3",
           "--dest-creds", "admin:admin123", "--dest-tls-verify=false")
    for tag in ("2",):
        skopeo("copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false", "--src-creds",
               "admin:admin123", "--dest-creds", "admin:admin123",
               f"docker://{server.hosted}/orchestrator-multi:1", f"docker://{server.hosted}/orchestrator-multi:{tag}")
    skopeo("copy", "--all", "--src-tls-verify=false", "--src-creds", "admin:admin123",
           f"docker://{server.group}/orchestrator-multi:1", f"oci:{tmp_path / 'back'}:multi")
    back = json.loads((tmp_path / "back" / "index.json").read_text())["manifests"][0]
    assert back["digest"] == index_digest
    assert back["mediaType"] == "application/vnd.oci.image.index.v1+json"
    tags = json.loads(skopeo("list-tags", "--tls-verify=false", *CREDS,
                             f"docker://{server.group}/orchestrator-multi").stdout)
    assert tags["Tags"] == ["1", "2", "3"]
    http = urllib3.PoolManager(headers=urllib3.make_headers(basic_auth="admin:admin123"))
    page = http.request("GET", f"http://{server.hosted}/v2/orchestrator-multi/tags/list?n=2")
    assert json.loads(page.data)["tags"] == ["1", "2"]
    assert page.headers["Link"] == '</v2/orchestrator-multi/tags/list?n=2&last=2>; rel="next"'
    nxt = http.request("GET", f"http://{server.hosted}/v2/orchestrator-multi/tags/list?n=2&last=2")
    assert json.loads(nxt.data)["tags"] == ["3"] and "Link" not in nxt.headers
    # skopeo deletes by digest: every tag of that manifest goes (tag 3 is the only one of its image)
    skopeo("delete", "--tls-verify=false", *CREDS, f"docker://{server.hosted}/orchestrator-multi:3")
    gone = skopeo("inspect", "--tls-verify=false", *CREDS, "--raw",
                  f"docker://{server.hosted}/orchestrator-multi:3", check=False)
    assert gone.returncode != 0 and "manifest unknown" in gone.stderr
    tags = json.loads(skopeo("list-tags", "--tls-verify=false", *CREDS,
                             f"docker://{server.hosted}/orchestrator-multi").stdout)
    assert tags["Tags"] == ["1", "2"]


def test_tls_handshake_on_plain_port_fails_fast(docker_layout) -> None:
    import socket
    import ssl
    import time

    server = docker_layout()
    host, port = server.hosted.split(":")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        try:
            context.wrap_socket(sock)
            raise AssertionError("a TLS handshake succeeded on a plain-HTTP port")
        except (ssl.SSLError, ConnectionError, OSError):
            pass
    # A server that waited for more of the handshake would be cut by the 30 s socket timeout; the bound
    # is far from both that and a loaded machine's scheduling noise.
    assert time.monotonic() - started < 10
    # and plain HTTP still works on the same port afterwards
    assert urllib.request.urlopen(f"http://{server.hosted}/v2/token").status == 200
