"""examples/cluster stays valid: its configuration loads and nginx accepts its load balancer file."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cluster_kit import NGINX
from stowage.serialization import make_converter
from stowage.settings import load_config_file

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "cluster"


def test_the_cluster_configuration_loads() -> None:
    config = load_config_file(EXAMPLE / "cluster.toml", make_converter())
    assert [store.name for store in config.blob_stores] == ["shared"]
    assert all(r["storage"]["blobStoreName"] == "shared" for r in config.repositories)
    assert len(config.server.secret_key) >= 32


def test_nginx_accepts_the_load_balancer_configuration(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    result = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(EXAMPLE / "nginx.conf")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
