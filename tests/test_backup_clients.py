"""The issue's acceptance run with real clients: content of all five formats, a backup taken while an
upload/download loop runs, the server stopped, a restore into a new directory, a server started there:
pip, npm, skopeo and dnf get byte-identical artifacts for everything uploaded before the backup, and the
metadata (simple pages, packuments, tags, repodata) lists exactly that — nothing pushed after it."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import urllib3

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
for kit in ("pypi", "npm", "docker"):
    sys.path.insert(0, str(PLUGINS / kit / "tests"))

from docker_kit import skopeo  # noqa: E402
from npm_kit import NpmClient, make_package  # noqa: E402
from oci_layout import Layout  # noqa: E402
from pypi_kit import make_wheel, pip, twine_upload  # noqa: E402

pytestmark = pytest.mark.slow

REPOSITORIES = [
    {"name": "pypi-hosted", "format": "pypi", "type": "hosted"},
    {"name": "npm-hosted", "format": "npm", "type": "hosted"},
    {"name": "docker-hosted", "format": "docker", "type": "hosted"},
    {"name": "yum-hosted", "format": "yum", "type": "hosted"},
    {"name": "raw-hosted", "format": "raw", "type": "hosted"},
]
STOWAGE = str(Path(sys.executable).with_name("stowage"))


def _build_rpm():
    spec = importlib.util.spec_from_file_location("yum_test_rpms", PLUGINS / "yum" / "tests" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_rpm


def client_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "TWINE_", "PYTHONPATH"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1",
               PIP_CACHE_DIR=str(tmp_path / "pip-cache"), HOME=str(tmp_path), NO_PROXY="*")
    return env


def dnf(root: Path, baseurl: str, *args: str) -> str:
    command = ["dnf", "--quiet", "--assumeyes", f"--installroot={root / 'installroot'}", "--releasever=9",
               "--setopt=reposdir=/nonexistent", f"--setopt=cachedir={root / 'dnf-cache'}",
               f"--repofrompath=stowage,{baseurl}", "--repo=stowage", "--setopt=stowage.gpgcheck=0",
               "--setopt=stowage.metadata_expire=0", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


class Clients:
    """Every client, pointed at one server."""

    def __init__(self, tmp_path: Path, url: str, password: str):
        self.tmp = tmp_path
        self.url = url
        self.password = password
        self.env = client_env(tmp_path / "pip-home")
        self.npm = NpmClient(tmp_path / "npm-home", f"{url}/repository/npm-hosted/")
        self.npm.auth(f"{url}/repository/npm-hosted/", user="admin", password=password)
        self.docker = url.split("://", 1)[1] + "/docker-hosted"

    def twine(self, wheel: Path) -> None:
        twine_upload(f"{self.url}/repository/pypi-hosted/", [wheel], self.env, self.password)

    def npm_publish(self, tarball: Path) -> None:
        self.npm.run("publish", str(tarball))

    def skopeo_push(self, layout: Layout, tag: str) -> None:
        skopeo("copy", f"oci:{layout.root}:{tag}", f"docker://{self.docker}/app:{tag}",
               "--dest-creds", f"admin:{self.password}", "--dest-tls-verify=false")

    def rpm_upload(self, rpm: Path) -> None:
        response = urllib3.request("PUT", f"{self.url}/repository/yum-hosted/{rpm.name}", body=rpm.read_bytes(),
                                   headers=urllib3.make_headers(basic_auth=f"admin:{self.password}"))
        assert response.status == 201, response.data


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_backup_during_traffic_then_restore_serves_exactly_the_backed_up_state(
        stowage_factory, live_server_factory, tmp_path):
    for tool in ("skopeo", "dnf", "npm", "rpmbuild"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is required (.ci/apt-packages.txt)")
    build_rpm = _build_rpm()
    ts = stowage_factory(repositories=REPOSITORIES)
    live = live_server_factory(ts)
    clients = Clients(tmp_path / "before", live.url, ts.admin_password)
    made = tmp_path / "made"
    (made / "rpmbuild").mkdir(parents=True)

    # Content of all five formats, uploaded with real clients.
    wheel = make_wheel(made, "backed-up", "1.0")
    clients.twine(wheel)
    npm_dir = make_package(made, "backed-up", "1.0.0")
    npm_tarball = made / clients.npm.run("pack", "--pack-destination", str(made), cwd=npm_dir).stdout.split()[-1]
    clients.npm_publish(npm_tarball)
    layout = Layout(made / "oci")
    layout.tag(layout.image([{"a.txt": b"A" * 1000}, {"b.txt": os.urandom(20_000)}]), "1.0")
    clients.skopeo_push(layout, "1.0")
    rpm = build_rpm(made / "rpmbuild", "backedup", "1.0")
    clients.rpm_upload(rpm)
    raw = os.urandom(100_000)
    assert urllib3.request("PUT", f"{live.url}/repository/raw-hosted/release/app.bin", body=raw,
                           headers=ts.admin).status == 201
    from stowage.plugin import BackgroundWork
    from stowage_yum.state import JOB
    BackgroundWork.of(ts.stowage).run_pending(job=JOB, due_only=False)  # repodata for the RPM before the backup

    # A loop of uploads and downloads runs while the backup is taken.
    stop, loop_errors, loop_uploads = threading.Event(), [], {}

    def loop() -> None:
        http = urllib3.PoolManager()
        i = 0
        while not stop.is_set():
            data = os.urandom(20_000)
            put = http.request("PUT", f"{live.url}/repository/raw-hosted/loop/{i}.bin", body=data, headers=ts.admin)
            loop_uploads[f"loop/{i}.bin"] = data
            for path in ("repository/pypi-hosted/simple/backed-up/", "repository/npm-hosted/backed-up",
                         "repository/yum-hosted/repodata/repomd.xml", "repository/raw-hosted/release/app.bin"):
                if http.request("GET", f"{live.url}/{path}").status != 200:
                    loop_errors.append(path)
            if put.status != 201:
                loop_errors.append(f"PUT {i}: {put.status}")
            i += 1

    worker = threading.Thread(target=loop)
    worker.start()
    while len(loop_uploads) < 5:
        stop.wait(0.05)
    loop_before = dict(loop_uploads)
    backup = subprocess.run([STOWAGE, "backup", "--data-dir", str(ts.stowage.settings.data_path), "--to",
                             str(tmp_path / "backup"), "--quiet"], capture_output=True, text=True, timeout=300)
    loop_during = dict(loop_uploads)
    stop.set()
    worker.join()
    assert backup.returncode == 0, backup.stdout + backup.stderr
    assert not loop_errors

    # More content after the backup: none of it may come back.
    clients.twine(make_wheel(made, "backed-up", "2.0"))
    clients.npm_publish(made / clients.npm.run("pack", "--pack-destination", str(made),
                                               cwd=make_package(made, "backed-up", "2.0.0")).stdout.split()[-1])
    layout.tag(layout.image([{"c.txt": b"after the backup"}]), "2.0")
    clients.skopeo_push(layout, "2.0")
    clients.rpm_upload(build_rpm(made / "rpmbuild", "afterwards", "1.0"))
    live.stop()

    restored = subprocess.run([STOWAGE, "restore", "--from", str(tmp_path / "backup"), "--data-dir",
                               str(tmp_path / "restored"), "--quiet"], capture_output=True, text=True, timeout=300)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    again = live_server_factory(stowage_factory(data_dir=tmp_path / "restored"))
    after = Clients(tmp_path / "after", again.url, ts.admin_password)

    # pip: the same wheel, and the simple page lists exactly 1.0
    index = f"{again.url}/repository/pypi-hosted/simple/"
    pip(after.env, "download", "--no-deps", "--index-url", index, "-d", str(tmp_path / "pip"), "backed-up")
    assert [p.name for p in (tmp_path / "pip").iterdir()] == [wheel.name]
    assert sha(tmp_path / "pip" / wheel.name) == sha(wheel)
    page = urllib3.request("GET", f"{index}backed-up/").data.decode()
    assert "backed_up-1.0-py3-none-any.whl" in page and "2.0" not in page

    # npm: exactly version 1.0.0, the same tarball bytes
    packument = json.loads(after.npm.run("view", "backed-up", "--json").stdout)
    assert packument["versions"] == ["1.0.0"] and packument["dist-tags"] == {"latest": "1.0.0"}
    after.npm.run("pack", "backed-up@1.0.0", "--pack-destination", str(tmp_path), cwd=tmp_path)
    assert sha(tmp_path / npm_tarball.name) == sha(npm_tarball)

    # skopeo: tag 1.0 only, the same manifest digest and layer bytes
    tags = json.loads(skopeo("list-tags", "--tls-verify=false", "--creds", f"admin:{ts.admin_password}",
                             f"docker://{after.docker}/app").stdout)["Tags"]
    assert tags == ["1.0"]
    skopeo("copy", "--src-tls-verify=false", "--src-creds", f"admin:{ts.admin_password}",
           f"docker://{after.docker}/app:1.0", f"oci:{tmp_path / 'pulled'}:1.0")
    pulled = json.loads((tmp_path / "pulled" / "index.json").read_text())["manifests"][0]["digest"]
    original = json.loads((layout.root / "index.json").read_text())["manifests"][0]["digest"]
    assert pulled == original
    for blob in (tmp_path / "pulled" / "blobs" / "sha256").iterdir():
        assert blob.read_bytes() == (layout.root / "blobs" / "sha256" / blob.name).read_bytes()

    # dnf: the repodata lists exactly the backed-up RPM, downloaded byte-identical
    baseurl = f"{again.url}/repository/yum-hosted/"
    listed = dnf(tmp_path / "dnf", baseurl, "repoquery", "--queryformat", "%{name}-%{version}\n").split()
    assert listed == ["backedup-1.0"]
    dnf(tmp_path / "dnf", baseurl, "download", f"--destdir={tmp_path / 'dl'}", "backedup")
    assert sha(tmp_path / "dl" / rpm.name) == sha(rpm)

    # raw, and the loop: everything before the backup, nothing after, all byte-identical
    assert urllib3.request("GET", f"{again.url}/repository/raw-hosted/release/app.bin").data == raw
    catalog = again.stowage.catalog
    loop_paths = {a.path for a in catalog.iter_assets("raw-hosted", prefix="loop/")}
    assert set(loop_before) <= loop_paths <= set(loop_during)
    for path in loop_paths:
        assert urllib3.request("GET", f"{again.url}/repository/raw-hosted/{path}").data == loop_during[path]

    verify = subprocess.run([STOWAGE, "verify", "--data-dir", str(tmp_path / "restored"), "--deep", "--quiet"],
                            capture_output=True, text=True, timeout=300)
    assert verify.returncode == 0, verify.stdout
