"""Issue 10 item 9: on a genuinely full disk every write answers 507 Insufficient Storage, in each format's own
error envelope, and stores nothing; reads keep working (stored files, indexes, ``repomd.xml`` with a
regeneration pending, the Docker token service on a worker that had not loaded its key).

The data directory lives on a small tmpfs mounted for the test (root, as in CI); the disk is then filled
with a plain file, exactly as another program would fill it.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

from stowage.http.errors import storage_error
from stowage.testing import build_stowage

REPOSITORIES = [dict(name="raw-h", format="raw", type="hosted"),
                dict(name="pypi-h", format="pypi", type="hosted"),
                dict(name="npm-h", format="npm", type="hosted"),
                dict(name="yum-h", format="yum", type="hosted"),
                dict(name="docker-h", format="docker", type="hosted")]


def fill(disk: Path) -> Path:
    """Fill the filesystem to the last byte with one file; return it (delete it to make room again)."""
    filler = disk / "filler"
    block = b"\0" * 65536
    with open(filler, "wb", buffering=0) as handle:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    handle.write(block[:size])
            except OSError as error:
                assert error.errno == errno.ENOSPC
    return filler


def wheel(name: str, version: str) -> bytes:
    out = io.BytesIO()
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(f"{name}/__init__.py", "x = 1\n" * 2000)
        archive.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n")
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{info}/RECORD", "")
    return out.getvalue()


def npm_publish(name: str, version: str) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for member, data in {"package/package.json": json.dumps({"name": name, "version": version}).encode(),
                             "package/blob.bin": bytes(range(256)) * 400}.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    tarball = out.getvalue()
    return json.dumps({"_id": name, "name": name, "dist-tags": {"latest": version},
                       "versions": {version: {"name": name, "version": version, "dist": {
                           "shasum": hashlib.sha1(tarball).hexdigest(), "tarball": "http://x/t.tgz"}}},
                       "_attachments": {f"{name}-{version}.tgz": {"data": base64.b64encode(tarball).decode(),
                                                                  "length": len(tarball)}}}).encode()


def rpm(topdir: Path, name: str, version: str) -> bytes:
    spec = topdir / f"{name}.spec"
    topdir.mkdir(parents=True, exist_ok=True)
    spec.write_text(textwrap.dedent(f"""\
        Name: {name}
        Version: {version}
        Release: 1
        Summary: full-disk test package
        License: MIT
        BuildArch: noarch
        %description
        A test package.
        %install
        mkdir -p %{{buildroot}}/usr/share/{name}
        head -c 200000 /dev/urandom > %{{buildroot}}/usr/share/{name}/data
        %files
        /usr/share/{name}/data
        """))
    subprocess.run(["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {topdir}/top", "--define",
                    f"_rpmdir {topdir}/rpms", "--define", "_build_id_links none", str(spec)],
                   check=True, capture_output=True)
    return (topdir / "rpms" / "noarch" / f"{name}-{version}-1.noarch.rpm").read_bytes()


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    import urllib3

    body, content_type = urllib3.encode_multipart_formdata(
        {**fields, **{key: (filename, data, "application/octet-stream") for key, (filename, data) in files.items()}})
    return body, content_type


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.mark.skipif(shutil.which("rpmbuild") is None, reason="rpmbuild (Debian package rpm) is needed")
def test_a_full_disk_answers_507_for_writes_and_keeps_reads_working(small_disk, tmp_path, monkeypatch):
    monkeypatch.setenv("STOWAGE_ADMIN_PASSWORD", "admin123")
    ts = build_stowage(small_disk / "data", repositories=REPOSITORIES)
    client, admin = ts.client, ts.admin
    hello1, hello2 = rpm(tmp_path / "rpm1", "hello", "1.0"), rpm(tmp_path / "rpm2", "world", "2.0")
    third = rpm(tmp_path / "rpm3", "third", "3.0")
    from stowage.plugin import BackgroundWork
    from stowage_yum.state import JOB

    regeneration = BackgroundWork.of(ts.stowage)
    regeneration.configure(JOB, delay=3600)  # regenerations stay pending unless asked for

    # -- before: one of everything -------------------------------------------------------------------
    assert client.simulate_put("/repository/raw-h/docs/a.txt", body=b"hello", headers=admin).status_code == 201
    body, content_type = multipart({":action": "file_upload", "name": "pkg", "version": "1.0"},
                                   {"content": ("pkg-1.0-py3-none-any.whl", wheel("pkg", "1.0"))})
    assert client.simulate_post("/repository/pypi-h/", body=body,
                                headers={**admin, "Content-Type": content_type}).status_code == 200
    assert client.simulate_put("/repository/npm-h/pkg", body=npm_publish("pkg", "1.0.0"),
                               headers={**admin, "Content-Type": "application/json"}).status_code in (200, 201)
    assert client.simulate_put("/repository/yum-h/hello-1.0-1.noarch.rpm", body=hello1,
                               headers=admin).status_code == 201
    regeneration.run_pending(job=JOB, repository="yum-h", due_only=False)
    first_repomd = client.simulate_get("/repository/yum-h/repodata/repomd.xml")
    assert first_repomd.status_code == 200
    assert client.simulate_put("/repository/yum-h/world-2.0-1.noarch.rpm", body=hello2,
                               headers=admin).status_code == 201  # its regeneration is now pending
    token = client.simulate_get("/v2/token", headers=admin).json["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    config = b"{}"
    assert client.simulate_post(f"/v2/docker-h/app/blobs/uploads/?digest={digest(config)}", body=config,
                                headers=bearer).status_code == 201
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": digest(config), "size": 2}, "layers": []}).encode()
    assert client.simulate_put("/v2/docker-h/app/manifests/v1", body=manifest, headers={
        **bearer, "Content-Type": "application/vnd.oci.image.manifest.v1+json"}).status_code == 201

    filler = fill(small_disk)
    before = ts.stored_state()

    # -- writes: 507 with a clear message, each in its format's envelope --------------------------------
    big = bytes(range(256)) * 2000
    raw = client.simulate_put("/repository/raw-h/docs/b.bin", body=big, headers=admin)
    assert raw.status_code == 507 and "disk is full" in raw.text, raw.text
    body, content_type = multipart({":action": "file_upload", "name": "pkg", "version": "2.0"},
                                   {"content": ("pkg-2.0-py3-none-any.whl", wheel("pkg", "2.0") + b"\0" * 300000)})
    pypi = client.simulate_post("/repository/pypi-h/", body=body, headers={**admin, "Content-Type": content_type})
    assert pypi.status_code == 507 and "disk is full" in pypi.text, pypi.text
    npm = client.simulate_put("/repository/npm-h/pkg", body=npm_publish("pkg", "2.0.0"),
                              headers={**admin, "Content-Type": "application/json"})
    assert npm.status_code == 507 and "disk is full" in npm.json["error"], npm.text
    yum = client.simulate_put("/repository/yum-h/third-3.0-1.noarch.rpm", body=third, headers=admin)
    assert yum.status_code == 507 and "disk is full" in yum.text, yum.text
    layer = bytes(range(256)) * 1000
    docker = client.simulate_post(f"/v2/docker-h/app/blobs/uploads/?digest={digest(layer)}", body=layer,
                                  headers=bearer)
    assert docker.status_code == 507, docker.text
    assert docker.json["errors"][0]["code"] == "INSUFFICIENT_STORAGE" and "disk is full" in docker.text
    body, content_type = multipart({"raw.directory": "/up"}, {"raw.asset1": ("c.bin", big)})
    rest = client.simulate_post("/service/rest/v1/components", params={"repository": "raw-h"}, body=body,
                                headers={**admin, "Content-Type": content_type, "Accept": "application/json"})
    assert rest.status_code == 507 and rest.json["code"] == "INSUFFICIENT_STORAGE", rest.text
    started = client.simulate_post("/v2/docker-h/app/blobs/uploads/", headers=bearer)
    if started.status_code == 202:  # the session's catalog row fit in the catalog's free pages
        chunk = client.simulate_patch(started.headers["Location"].split("falconframework.org", 1)[-1], body=layer,
                                      headers={**bearer, "Content-Type": "application/octet-stream"})
        assert chunk.status_code == 507 and chunk.json["errors"][0]["code"] == "INSUFFICIENT_STORAGE", chunk.text
    else:
        assert started.status_code == 507, started.text
    for n in range(200):  # catalog-only writes: SQLite's own "database or disk is full" is a 507 too
        created = client.simulate_post("/service/rest/v1/security/users", json={
            "userId": f"user{n}", "firstName": "F" * 2000, "lastName": "L" * 2000, "emailAddress": f"u{n}@example.org",
            "password": "secret-pass", "status": "active", "roles": ["nx-anonymous"]},
            headers={**admin, "Accept": "application/json"})
        if created.status_code != 200:
            break
    assert created.status_code == 507 and created.json["code"] == "INSUFFICIENT_STORAGE", created.text
    before = {key: value for key, value in before.items() if key not in ("documents",)}
    assert {key: value for key, value in ts.stored_state().items() if key in before} == before, \
        "a refused write left something behind"

    # -- reads keep working ------------------------------------------------------------------------------
    assert client.simulate_get("/repository/raw-h/docs/a.txt").text == "hello"
    assert client.simulate_get("/repository/pypi-h/simple/pkg/").status_code == 200
    assert client.simulate_get("/repository/npm-h/pkg").json["dist-tags"]["latest"] == "1.0.0"
    with pytest.raises(Exception) as failed:  # the regeneration fails, and stays requested (retried later)
        regeneration.run_now(JOB, "yum-h", "")
    assert storage_error(failed.value) is not None, failed.value
    assert regeneration.pending(JOB) != []
    repomd = client.simulate_get("/repository/yum-h/repodata/repomd.xml")
    assert repomd.status_code == 200 and repomd.text == first_repomd.text  # the last published generation
    assert client.simulate_get("/service/rest/v1/search", params={"repository": "raw-h"},
                               headers=admin).status_code == 200
    # another worker, which has not loaded the token key yet, still issues and accepts tokens
    other = build_stowage(small_disk / "data")
    fresh = other.client.simulate_get("/v2/token", headers=admin)
    assert fresh.status_code == 200, fresh.text
    pulled = other.client.simulate_get("/v2/docker-h/app/manifests/v1", headers={
        "Authorization": f"Bearer {fresh.json['token']}", "Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert pulled.status_code == 200 and pulled.content == manifest

    # -- room again: writes work ---------------------------------------------------------------------------
    filler.unlink()
    assert client.simulate_put("/repository/raw-h/docs/b.bin", body=big, headers=admin).status_code == 201
    regeneration.run_pending(job=JOB, repository="yum-h", due_only=False)
    assert client.simulate_get("/repository/yum-h/repodata/repomd.xml").text != first_repomd.text
    other.stowage.close()
