"""Real clients through the load balancer of a three-node cluster (PostgreSQL catalog, one S3 bucket):
twine + pip, npm publish + install, skopeo push + pull, curl up and down. Each push lands on one node and
the pulls that follow on the others."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from cluster_kit import Cluster
from stowage.testing import free_port
from stowage.testing.harness import ADMIN_PASSWORD

PLUGIN_TESTS = Path(__file__).resolve().parents[1] / "plugins"
for plugin in ("pypi", "npm", "docker", "yum"):
    sys.path.insert(0, str(PLUGIN_TESTS / plugin / "tests"))

from docker_kit import skopeo  # noqa: E402
from npm_kit import NpmClient, installed_version, make_package  # noqa: E402
from oci_layout import Layout  # noqa: E402
from pypi_kit import make_wheel, pip, twine_upload  # noqa: E402
from test_yum_dnf import available, curl_upload, dnf  # noqa: E402

pytestmark = pytest.mark.slow

DOCKER_PORT = free_port()


def config(blob_store: str) -> str:
    return f'''
[server]
secretKey = "one-key-for-every-node-of-the-cluster"

{blob_store}

[[repositories]]
name = "raw-hosted"
format = "raw"
type = "hosted"
storage = {{ blobStoreName = "shared" }}

[[repositories]]
name = "pypi-hosted"
format = "pypi"
type = "hosted"
storage = {{ blobStoreName = "shared" }}

[[repositories]]
name = "npm-hosted"
format = "npm"
type = "hosted"
storage = {{ blobStoreName = "shared" }}

[[repositories]]
name = "yum-hosted"
format = "yum"
type = "hosted"
storage = {{ blobStoreName = "shared" }}

[[repositories]]
name = "yum-group"
format = "yum"
type = "group"
group = {{ memberNames = ["yum-hosted"] }}

[[repositories]]
name = "docker-hosted"
format = "docker"
type = "hosted"
storage = {{ blobStoreName = "shared" }}
docker = {{ httpPort = {DOCKER_PORT}, forceBasicAuth = true }}
'''


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, postgres_server, s3_server) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    bucket = s3_server.create_bucket()
    cluster = Cluster(root, config(s3_server.toml("shared", bucket)), postgres_server.new_database(),
                      docker_ports=[DOCKER_PORT])
    try:
        yield cluster.start()
    finally:
        cluster.stop()
        s3_server.remove_bucket(bucket)


@pytest.fixture
def client_env(tmp_path: Path) -> dict[str, str]:
    from pypi_kit import client_env as make_env

    return make_env.__wrapped__(tmp_path)


def nodes_that_served(cluster: Cluster, needle: str) -> set[str]:
    return {line.split()[0] for line in cluster.node_served() if needle in line}


def test_twine_upload_then_pip_install(cluster: Cluster, tmp_path: Path, client_env: dict[str, str]) -> None:
    (tmp_path / "dists").mkdir()
    wheels = [make_wheel(tmp_path / "dists", f"cluster-pkg{i}", "1.0") for i in range(3)]
    twine_upload(f"{cluster.url}/repository/pypi-hosted/", wheels, client_env, ADMIN_PASSWORD)
    for i in range(3):
        pip(client_env, "install", "--no-deps", "--target", str(tmp_path / f"site{i}"), "--index-url",
            f"{cluster.url}/repository/pypi-hosted/simple/", f"cluster-pkg{i}==1.0")
        assert list((tmp_path / f"site{i}").glob("cluster_pkg*.dist-info"))
    assert len(nodes_that_served(cluster, "/repository/pypi-hosted/")) == 3


def test_npm_publish_then_install(cluster: Cluster, tmp_path: Path) -> None:
    registry = f"{cluster.url}/repository/npm-hosted/"
    client = NpmClient(tmp_path / "home", registry)
    client.auth(registry, user="admin", password=ADMIN_PASSWORD)
    for version in ("1.0.0", "1.1.0"):
        client.run("publish", cwd=make_package(tmp_path / "src", "cluster-lib", version))
    for i in range(3):
        project = tmp_path / f"project{i}"
        project.mkdir()
        (project / "package.json").write_text(json.dumps({"name": f"p{i}", "version": "1.0.0"}))
        client.run("install", "cluster-lib@^1.0.0", cwd=project)
        assert installed_version(project, "cluster-lib") == "1.1.0"


def test_skopeo_push_then_pull(cluster: Cluster, tmp_path: Path) -> None:
    layout = Layout(tmp_path / "img")
    layout.tag(layout.image([{"a.txt": b"A" * 3000}, {"b.txt": b"B" * 700_000}]), "1.0")
    front = cluster.docker_front(DOCKER_PORT)
    skopeo("copy", "--dest-creds", f"admin:{ADMIN_PASSWORD}", "--dest-tls-verify=false",
           f"oci:{layout.root}:1.0", f"docker://{front}/cluster/app:1.0")
    digests = {json.loads(skopeo("inspect", "--tls-verify=false", "--creds", f"admin:{ADMIN_PASSWORD}",
                                 f"docker://{front}/cluster/app:1.0").stdout)["Digest"] for _ in range(3)}
    assert len(digests) == 1
    skopeo("copy", "--src-tls-verify=false", "--src-creds", f"admin:{ADMIN_PASSWORD}",
           f"docker://{front}/cluster/app:1.0", f"oci:{tmp_path / 'back'}:1.0")
    assert (tmp_path / "back" / "index.json").exists()
    assert len(nodes_that_served(cluster, "/v2/cluster/app/")) == 3  # the push's requests spread too


def test_curl_up_and_down(cluster: Cluster, tmp_path: Path) -> None:
    source = tmp_path / "up.bin"
    source.write_bytes(b"\x00\x01curl" * 200_000)
    url = f"{cluster.url}/repository/raw-hosted/curl/up.bin"
    subprocess.run(["curl", "-sSf", "-u", f"admin:{ADMIN_PASSWORD}", "-T", str(source), url], check=True, timeout=60)
    for i in range(3):
        subprocess.run(["curl", "-sSf", "-o", str(tmp_path / f"down{i}"), url], check=True, timeout=60)
        assert (tmp_path / f"down{i}").read_bytes() == source.read_bytes()


def test_dnf_through_a_yum_group_after_uploads_to_several_nodes(cluster: Cluster, tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("yum_test_conftest", PLUGIN_TESTS / "yum" / "tests" / "conftest.py")
    yum_conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(yum_conftest)
    (tmp_path / "build").mkdir()
    for name in ("cluster-tool", "cluster-lib", "cluster-doc"):
        rpm = yum_conftest.build_rpm(tmp_path / "build", name, "1.0")
        result = curl_upload(cluster.url, "yum-hosted", rpm, f"Packages/{rpm.name}")
        assert result.stdout == "201", result.stderr
    group = f"{cluster.url}/repository/yum-group/"
    wanted = ["cluster-doc-1.0-1.noarch", "cluster-lib-1.0-1.noarch", "cluster-tool-1.0-1.noarch"]
    deadline = time.monotonic() + 60  # one node regenerates the metadata, after the coalescing delay
    while available(tmp_path, group) != wanted:
        assert time.monotonic() < deadline, available(tmp_path, group)
        time.sleep(1)
    dnf(tmp_path, group, "install", "cluster-tool")
    assert (tmp_path / "installroot" / "usr/share/cluster-tool/VERSION").read_text() == "cluster-tool-1.0\n"
