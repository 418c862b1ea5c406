"""skopeo pushes and pulls as a directory user (a real slapd) whose group maps to a role."""

from __future__ import annotations

import json
from pathlib import Path

from docker_kit import skopeo, wait_port
from oci_layout import Layout
from stowage.testing import free_port
from stowage.testing.slapd import map_group, use_directory

CREDS = "alice:alice-ldap-pw"


def test_skopeo_push_and_pull_as_a_directory_user(tmp_path: Path, stowage_factory, live_server_factory, slapd):
    port = free_port()
    app = stowage_factory(anonymous_access=False, repositories=[
        {"name": "docker-hosted", "format": "docker", "type": "hosted", "docker": {"httpPort": port}}])
    map_group(app, "developers", ["nx-repository-view-docker-docker-hosted-*"])
    use_directory(app, slapd)
    live_server_factory(app)
    wait_port(port)
    registry = f"127.0.0.1:{port}"
    layout = Layout(tmp_path / "img")
    layout.tag(layout.image([{"a.txt": b"A"}, {"b.txt": b"B" * 5000}]), "1.0")

    refused = skopeo("copy", f"oci:{layout.root}:1.0", f"docker://{registry}/ldap-image:1.0",
                     "--dest-creds", "alice:wrong", "--dest-tls-verify=false", check=False)
    assert refused.returncode != 0
    refused = skopeo("copy", f"oci:{layout.root}:1.0", f"docker://{registry}/ldap-image:1.0",
                     "--dest-creds", "bob:bob-ldap-pw", "--dest-tls-verify=false", check=False)
    assert refused.returncode != 0  # bob signs in, but his group (readers) maps to no role
    skopeo("copy", f"oci:{layout.root}:1.0", f"docker://{registry}/ldap-image:1.0",
           "--dest-creds", CREDS, "--dest-tls-verify=false")
    skopeo("copy", "--src-tls-verify=false", "--src-creds", CREDS, f"docker://{registry}/ldap-image:1.0",
           f"oci:{tmp_path / 'back'}:1.0")
    pushed = json.loads(skopeo("inspect", "--tls-verify=false", "--creds", CREDS,
                               f"docker://{registry}/ldap-image:1.0").stdout)["Digest"]
    assert json.loads((tmp_path / "back" / "index.json").read_text())["manifests"][0]["digest"] == pushed

    app.client.simulate_put("/service/rest/v1/security/realms/active", json=["NexusAuthenticatingRealm", "DockerToken"],
                            headers=app.admin)
    refused = skopeo("inspect", "--tls-verify=false", "--creds", CREDS, f"docker://{registry}/ldap-image:1.0",
                     check=False)
    assert refused.returncode != 0 and "unauthorized" in refused.stderr.lower()
    skopeo("inspect", "--tls-verify=false", "--creds", f"admin:{app.admin_password}",
           f"docker://{registry}/ldap-image:1.0")
