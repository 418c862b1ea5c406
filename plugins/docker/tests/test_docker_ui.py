"""Docker images in the web UI: browse and search show images (name, tag, digest, size, an index's
platforms), never blob paths, and not once the image is deleted; the repository list shows host:port."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from docker_kit import skopeo
from oci_layout import Layout

CREDS = ("--creds", "admin:admin123")
BROWSE = "/service/rest/repository/browse"


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_images_not_blobs_in_browse_and_search(tmp_path: Path, docker_layout) -> None:
    server = docker_layout()
    ts = server.ts
    layout = Layout(tmp_path / "img")
    index_digest = layout.multi_arch("multi")
    skopeo("copy", "--all", f"oci:{layout.root}:multi", f"docker://{server.hosted}/orchestrator-app:1.0",
           "--dest-creds", "admin:admin123", "--dest-tls-verify=false")
    single = layout.image([{"big.bin": os.urandom(40_000)}])
    layout.tag(single, "single")
    skopeo("copy", f"oci:{layout.root}:single", f"docker://{server.hosted}/orchestrator-tool:2.0",
           "--dest-creds", "admin:admin123", "--dest-tls-verify=false")

    browse = ts.client.simulate_get(f"{BROWSE}/docker-hosted/", headers=ts.admin)
    page = text(browse.text)
    assert "orchestrator-app" in page and "orchestrator-tool" in page
    assert f"Digest {index_digest}" in page
    assert "Platforms linux/amd64, linux/arm64" in page
    assert f"Digest {single['digest']}" in page
    # An image's size is its config's and layers', not its manifest's.
    manifest = json.loads((layout.root / "blobs" / "sha256" / single["digest"][7:]).read_bytes())
    size = manifest["config"]["size"] + sum(layer["size"] for layer in manifest["layers"])
    assert f"Size {size / 1024:.1f} KiB" in page

    search = ts.client.simulate_get("/search", params={"q": "orchestrator"}, headers=ts.admin)
    assert "/blobs/" not in search.text and "/manifests/sha256:" not in search.text
    assert "orchestrator-app" in search.text and "Platforms" in search.text

    skopeo("delete", "--tls-verify=false", *CREDS, f"docker://{server.hosted}/orchestrator-tool:2.0")
    search = ts.client.simulate_get("/search", params={"q": "orchestrator-tool"}, headers=ts.admin)
    assert "orchestrator-tool" not in search.text.split("<main>", 1)[1].split("</form>", 1)[1]

    # The repository list shows a repository that owns a port as host:port, as docker clients write it.
    home = ts.client.simulate_get("/", headers={**ts.admin, "Host": "repo.example.org:8081"}).text
    assert f"<code>repo.example.org:{server.hosted.rsplit(':', 1)[1]}</code>" in home
    assert f"<code>repo.example.org:{server.group.rsplit(':', 1)[1]}</code>" in home
    assert "<code>http://repo.example.org:8081/repository/docker-proxy/</code>" in home

