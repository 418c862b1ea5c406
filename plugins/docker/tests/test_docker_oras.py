"""oras-py (the ORAS Python SDK) against a hosted listener: artifacts, ``attach`` by subject, referrers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import oras.client
import oras.oci
import urllib3


def test_oras_push_pull_and_attach_listed_by_referrers(tmp_path: Path, docker_layout, monkeypatch) -> None:
    server = docker_layout()
    monkeypatch.chdir(tmp_path)
    Path("artifact.txt").write_text("the artifact")
    Path("sbom.json").write_text(json.dumps({"sbom": True}))
    client = oras.client.OrasClient(hostname=server.hosted, insecure=True)
    client.login(username="admin", password="admin123", hostname=server.hosted)
    target = f"{server.hosted}/orchestrator-artifacts:1.0"
    assert client.push(target=target, files=["artifact.txt"]).status_code == 201
    # a second push reuses oras-py's first token (it asks again only after a 403)
    assert client.push(target=f"{server.hosted}/orchestrator-artifacts:1.1", files=["artifact.txt"]).status_code == 201
    manifest = client.get_manifest(target)
    subject = oras.oci.Subject.from_manifest(manifest)
    # ``oras attach``: an artifact whose manifest names the image as its subject
    response = client.push(target=f"{server.hosted}/orchestrator-artifacts", files=["sbom.json:application/json"],
                           subject=subject, manifest_annotations={"org.example": "sbom"})
    assert response.status_code == 201
    assert response.headers["OCI-Subject"] == subject.digest
    http = urllib3.PoolManager(headers=urllib3.make_headers(basic_auth="admin:admin123"))
    listed = json.loads(http.request("GET", f"http://{server.hosted}/v2/orchestrator-artifacts/referrers/"
                                            f"{subject.digest}").data)
    assert len(listed["manifests"]) == 1
    assert listed["manifests"][0]["annotations"]["org.example"] == "sbom"
    os.mkdir("out")
    pulled = client.pull(target=target, outdir="out")
    assert Path(pulled[0]).read_text() == "the artifact"
