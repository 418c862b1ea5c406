"""Content selectors with skopeo: a user limited to ``orchestrator-*`` images pushes and pulls those and
nothing else."""

from __future__ import annotations

from pathlib import Path

from docker_kit import skopeo
from oci_layout import Layout

from stowage.security import User


def test_selector_limits_push_and_pull(tmp_path: Path, docker_layout) -> None:
    server = docker_layout()
    layout = Layout(tmp_path / "img")
    layout.tag(layout.image([{"a.txt": b"A"}]), "1.0")
    for image in ("orchestrator-api", "orchestrator-db"):
        skopeo("copy", f"oci:{layout.root}:1.0", f"docker://{server.hosted}/{image}:1.0",
               "--dest-creds", "admin:admin123", "--dest-tls-verify=false")
    security = server.ts.stowage.security
    security.save_selector({"name": "api", "description": "",
                            "expression": 'format == "docker" and path =^ "/v2/orchestrator-api/"'})
    security.save_privilege({"type": "repository-content-selector", "name": "api-all", "format": "docker",
                             "repository": "*", "contentSelector": "api", "actions": ["ALL"]})
    security.save_role({"id": "api-dev", "name": "api-dev", "privileges": ["api-all"], "roles": []})
    security.save_user(User(user_id="dev", roles=("api-dev",)), "dev-pw")
    security.set_anonymous_settings(False)
    dev = ("--creds", "dev:dev-pw", "--tls-verify=false")

    skopeo("inspect", *dev, f"docker://{server.group}/orchestrator-api:1.0")
    hidden = skopeo("inspect", *dev, f"docker://{server.group}/orchestrator-db:1.0", check=False)
    assert hidden.returncode != 0
    skopeo("copy", f"oci:{layout.root}:1.0", f"docker://{server.hosted}/orchestrator-api:2.0",
           "--dest-creds", "dev:dev-pw", "--dest-tls-verify=false")
    refused = skopeo("copy", f"oci:{layout.root}:1.0", f"docker://{server.hosted}/orchestrator-db:2.0",
                     "--dest-creds", "dev:dev-pw", "--dest-tls-verify=false", check=False)
    # refused at the first write (a blob HEAD outside the selectors is a 404, which reveals nothing)
    assert refused.returncode != 0 and "denied: user dev may not write /v2/orchestrator-db/" in refused.stderr
