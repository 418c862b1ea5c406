"""``stowage verify`` on hosted docker: a manifest whose layer is gone is reported at the manifest."""

from __future__ import annotations

import json
from pathlib import Path

from docker_kit import skopeo
from oci_layout import Layout
from stowage.verify import run_verify


def test_verify_reports_a_manifest_whose_layer_blob_is_gone(tmp_path: Path, docker_layout) -> None:
    server = docker_layout()
    layout = Layout(tmp_path / "img")
    layout.tag(layout.image([{"a.txt": b"A"}, {"b.txt": b"B" * 5000}]), "1.0")
    skopeo("copy", f"oci:{layout.root}:1.0", f"docker://{server.hosted}/orchestrator-app:1.0",
           "--dest-creds", "admin:admin123", "--dest-tls-verify=false")
    stowage = server.ts.stowage
    assert run_verify(stowage, deep=True).ok

    digest = json.loads((layout.root / "index.json").read_text())["manifests"][0]["digest"]
    manifest = json.loads((layout.root / "blobs" / "sha256" / digest.split(":")[1]).read_text())
    layer = manifest["layers"][1]["digest"]
    stowage.catalog.delete_asset("docker-hosted", f"v2/orchestrator-app/blobs/{layer}")
    report = run_verify(stowage)
    assert report.lines() == [f"docker-hosted v2/orchestrator-app/manifests/{digest}: manifest references 1 "
                              f"blob(s)/manifest(s) the repository does not have: {layer}"]
