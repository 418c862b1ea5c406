"""Build OCI image layouts on disk by hand (blobs, manifests, index.json), for skopeo to push."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"


class Layout:
    def __init__(self, root: Path):
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        self.entries: list[dict] = []

    def blob(self, data: bytes, media_type: str) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (self.root / "blobs" / "sha256" / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    def layer(self, files: dict[str, bytes]) -> tuple[dict, str]:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            for name, content in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(content)
                info.mtime = 0
                tar.addfile(info, io.BytesIO(content))
        uncompressed = raw.getvalue()
        compressed = gzip.compress(uncompressed, mtime=0)
        return (self.blob(compressed, "application/vnd.oci.image.layer.v1.tar+gzip"),
                "sha256:" + hashlib.sha256(uncompressed).hexdigest())

    def image(self, layers: list[dict[str, bytes]], *, arch: str = "amd64") -> dict:
        made = [self.layer(files) for files in layers]
        config = {"architecture": arch, "os": "linux", "config": {},
                  "rootfs": {"type": "layers", "diff_ids": [diff for _, diff in made]}}
        config_desc = self.blob(json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json")
        manifest = {"schemaVersion": 2, "mediaType": MANIFEST, "config": config_desc,
                    "layers": [desc for desc, _ in made]}
        desc = self.blob(json.dumps(manifest).encode(), MANIFEST)
        desc["platform"] = {"architecture": arch, "os": "linux"}
        return desc

    def big_layer_image(self, size: int) -> dict:
        """One layer of ``size`` random bytes (stored uncompressed-as-gzip-free tar for speed)."""
        data = os.urandom(size)
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            info = tarfile.TarInfo("blob.bin")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        uncompressed = raw.getvalue()
        desc = self.blob(uncompressed, "application/vnd.oci.image.layer.v1.tar")
        diff = desc["digest"]
        config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff]}}
        config_desc = self.blob(json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json")
        manifest = {"schemaVersion": 2, "mediaType": MANIFEST, "config": config_desc, "layers": [desc]}
        return self.blob(json.dumps(manifest).encode(), MANIFEST)

    def tag(self, desc: dict, tag: str) -> None:
        entry = dict(desc)
        entry.pop("platform", None)
        entry["annotations"] = {"org.opencontainers.image.ref.name": tag}
        self.entries.append(entry)
        (self.root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": self.entries}))

    def multi_arch(self, tag: str) -> str:
        amd = self.image([{"hello.txt": b"amd64 says hi"}], arch="amd64")
        arm = self.image([{"hello.txt": b"arm64 says hi"}], arch="arm64")
        index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": [amd, arm]}
        desc = self.blob(json.dumps(index).encode(), INDEX)
        self.tag(desc, tag)
        return desc["digest"]
