"""``stowage migrate-storage``: an SQLite + file installation moves into PostgreSQL and one blob store; a
server on the new catalog serves everything the old one did; re-runs resume; damage is reported."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
import urllib3

from core_helpers import STOWAGE, ServeProcess
from stowage.testing.harness import ADMIN_PASSWORD, basic_auth

pytestmark = pytest.mark.slow

CONFIG = """
[[blobStores]]
name = "default"
type = "File"
path = "default"

{s3_store}
[[repositories]]
name = "raw-hosted"
format = "raw"
type = "hosted"

[[repositories]]
name = "raw-other"
format = "raw"
type = "hosted"
"""
HTTP = urllib3.PoolManager(retries=False, timeout=30)


def migrate(config: Path, data_dir: Path, url: str, store: str = "shared") -> subprocess.CompletedProcess:
    return subprocess.run([STOWAGE, "migrate-storage", "--config", str(config), "--data-dir", str(data_dir),
                           "--to-catalog", url, "--to-blobstore", store, "--quiet"],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def old_installation(tmp_path: Path, s3_server, s3_bucket) -> tuple[Path, Path, dict[str, str]]:
    """A single node on SQLite and the file store "default", with the S3 store "shared" already defined."""
    config = tmp_path / "stowage.toml"
    config.write_text(CONFIG.format(s3_store=s3_server.toml("shared", s3_bucket)))
    data_dir = tmp_path / "old"
    server = ServeProcess(config, data_dir, env={"STOWAGE_ADMIN_PASSWORD": ADMIN_PASSWORD}).start()
    files = {}
    try:
        for i in range(12):
            repository = "raw-hosted" if i % 3 else "raw-other"
            body = f"artifact {i} ".encode() * (i * 500 + 1)
            path = f"{repository}/dir{i % 4}/file-{i}.bin"
            assert HTTP.request("PUT", f"{server.url}/repository/{path}", body=body, headers=basic_auth()).status == 201
            files[path] = hashlib.sha256(body).hexdigest()
        # one blob referenced twice, one overwritten (its old blob waits for GC in the catalog)
        HTTP.request("PUT", f"{server.url}/repository/raw-hosted/copy.bin", body=b"artifact 1 " * 501,
                     headers=basic_auth())
        files["raw-hosted/copy.bin"] = hashlib.sha256(b"artifact 1 " * 501).hexdigest()
    finally:
        server.stop()
    return config, data_dir, files


def test_a_server_on_the_migrated_catalog_serves_everything(old_installation, postgres_server, tmp_path,
                                                            s3_server, s3_bucket) -> None:
    config, data_dir, files = old_installation
    url = postgres_server.new_database()
    result = migrate(config, data_dir, url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "13 blobs verified" not in result.stdout  # 12 distinct contents: copy.bin repeats file 1
    assert "12 blobs verified; OK" in result.stdout, result.stdout
    assert len([key for key in s3_server.keys(s3_bucket) if "/blobs/" in f"/{key}"]) == 12  # now in the bucket
    assert "set their storage.blobStoreName to 'shared'" in result.stderr  # the file still says "default"

    cluster_config = tmp_path / "cluster.toml"
    cluster_config.write_text(config.read_text().replace('type = "hosted"\n',
                                                         'type = "hosted"\nstorage = { blobStoreName = "shared" }\n'))
    new_node = ServeProcess(cluster_config, tmp_path / "new-node", env={"STOWAGE_CATALOG": url}).start()
    try:
        for path, digest in files.items():
            response = HTTP.request("GET", f"{new_node.url}/repository/{path}")
            assert response.status == 200, path
            assert hashlib.sha256(response.data).hexdigest() == digest
        repositories = HTTP.request("GET", f"{new_node.url}/service/rest/v1/repositories/raw/hosted/raw-hosted",
                                    headers=basic_auth()).json()
        assert repositories["storage"]["blobStoreName"] == "shared"
        # ids continue after the copied ones: a new upload works and lists with the old ones
        assert HTTP.request("PUT", f"{new_node.url}/repository/raw-hosted/after.bin", body=b"new",
                            headers=basic_auth()).status == 201
        items = HTTP.request("GET", f"{new_node.url}/service/rest/v1/assets?repository=raw-hosted",
                             headers=basic_auth()).json()["items"]
        assert len(items) == 1 + sum(1 for p in files if p.startswith("raw-hosted/"))
    finally:
        new_node.stop()


def test_a_second_run_resumes_and_damage_is_reported(old_installation, postgres_server, s3_server,
                                                      s3_bucket) -> None:
    config, data_dir, _ = old_installation
    url = postgres_server.new_database()
    assert migrate(config, data_dir, url).returncode == 0
    again = migrate(config, data_dir, url)
    assert again.returncode == 0 and "0 blobs copied (0 bytes), 12 already there" in again.stdout, again.stdout
    victim = next(key for key in s3_server.keys(s3_bucket) if "/blobs/" in f"/{key}")
    s3_server.client().put_object(Bucket=s3_bucket, Key=victim, Body=b"bit rot")
    damaged = migrate(config, data_dir, url)
    digest = victim.rsplit("/", 1)[1]
    assert damaged.returncode == 1 and f"blob {digest} in blob store shared has sha256" in damaged.stdout


def test_an_unknown_target_blob_store_is_refused(old_installation, postgres_server) -> None:
    config, data_dir, _ = old_installation
    result = migrate(config, data_dir, postgres_server.new_database(), store="nowhere")
    assert result.returncode == 2 and "blob store 'nowhere' does not exist" in result.stderr
