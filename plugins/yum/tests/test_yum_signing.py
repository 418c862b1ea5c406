"""GPG signing of repomd.xml with a configured key, checked with gpg itself."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from stowage.plugin import BackgroundWork
from stowage_yum.state import JOB


@pytest.fixture(scope="module")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    if shutil.which("gpg") is None:
        pytest.fail("gpg is required (Debian package gnupg, listed in .ci/apt-packages.txt)")
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--quiet", "--pinentry-mode", "loopback"]
    subprocess.run([*gpg, "--passphrase", "s3cret", "--quick-gen-key", "Stowage Tests <yum@example.org>",
                    "ed25519", "sign", "never"], check=True, capture_output=True)
    secret = subprocess.run([*gpg, "--passphrase", "s3cret", "--armor", "--export-secret-keys"], check=True,
                            capture_output=True).stdout.decode()
    yield {"keypair": secret, "passphrase": "s3cret"}
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True)


def verify(tmp_path: Path, key: bytes, data: bytes, signature: bytes) -> subprocess.CompletedProcess:
    tmp_path.mkdir(parents=True)
    home = Path(tempfile.mkdtemp(prefix="stowage-verify-"))  # short: gpg-agent's socket lives there
    (tmp_path / "key.asc").write_bytes(key)
    (tmp_path / "data").write_bytes(data)
    (tmp_path / "data.asc").write_bytes(signature)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--quiet"]
    subprocess.run([*gpg, "--import", str(tmp_path / "key.asc")], check=True, capture_output=True)
    try:
        return subprocess.run([*gpg, "--verify", str(tmp_path / "data.asc"), str(tmp_path / "data")],
                              capture_output=True, text=True)
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def test_hosted_and_group_repomd_are_signed(yum_app, rpms, signing_key, tmp_path):
    ts = yum_app()
    ts.stowage.save_repository(ts.stowage.parse_repository(
        {"name": "yum-hosted", "format": "yum", "type": "hosted", "yumSigning": signing_key}))
    ts.stowage.save_repository(ts.stowage.parse_repository(
        {"name": "yum-group", "format": "yum", "type": "group", "yumSigning": signing_key,
         "group": {"memberNames": ["yum-hosted", "yum-hosted2"]}}))
    response = ts.client.simulate_put("/repository/yum-hosted/hello-1.0-1.noarch.rpm",
                                      body=rpms["hello-1.0"].read_bytes(), headers=ts.admin)
    assert response.status_code == 201
    BackgroundWork.of(ts.stowage).run_pending(job=JOB, due_only=False)
    for repo in ("yum-hosted", "yum-group"):
        repomd = ts.client.simulate_get(f"/repository/{repo}/repodata/repomd.xml").content
        signature = ts.client.simulate_get(f"/repository/{repo}/repodata/repomd.xml.asc")
        key = ts.client.simulate_get(f"/repository/{repo}/repodata/repomd.xml.key")
        assert signature.status_code == 200 and key.status_code == 200
        assert b"BEGIN PGP PUBLIC KEY BLOCK" in key.content and b"PRIVATE" not in key.content
        result = verify(tmp_path / repo, key.content, repomd, signature.content)
        assert result.returncode == 0, result.stderr
        tampered = verify(tmp_path / f"{repo}-tampered", key.content, repomd.replace(b"<revision>", b"<revision>9"),
                          signature.content)
        assert tampered.returncode != 0


def test_unsigned_repository_has_no_key(yum_app):
    ts = yum_app()
    assert ts.client.simulate_get("/repository/yum-hosted/repodata/repomd.xml.key").status_code == 404
    assert ts.client.simulate_get("/repository/yum-group/repodata/repomd.xml.asc").status_code == 404


def test_rest_api_never_returns_the_signing_key_and_keeps_it_on_update(yum_app, signing_key):
    ts = yum_app()
    ts.stowage.save_repository(ts.stowage.parse_repository(
        {"name": "yum-hosted", "format": "yum", "type": "hosted", "yumSigning": signing_key}))
    shown = ts.client.simulate_get("/service/rest/v1/repositories/yum/hosted/yum-hosted", headers=ts.admin)
    assert shown.status_code == 200
    assert "PRIVATE KEY" not in shown.text and "s3cret" not in shown.text
    body = dict(shown.json)
    body.pop("url", None)
    body["online"] = True
    updated = ts.client.simulate_put("/service/rest/v1/repositories/yum/hosted/yum-hosted", json=body,
                                     headers=ts.admin)
    assert updated.status_code == 204, updated.text
    section = ts.stowage.repository("yum-hosted").config.section("yumSigning")
    assert section.keypair == signing_key["keypair"] and section.passphrase == "s3cret"
    stored = str(ts.stowage.catalog.get_repository("yum-hosted"))  # sealed in the catalog (core's secret key)
    assert "PRIVATE KEY" not in stored and "s3cret" not in stored
