"""Secrets kept in the catalog are sealed (issue #10 item 3): a copy of the catalog does not reveal proxy
credentials, LDAP bind passwords nor S3 secret keys, yet each still works where it is used."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

import pytest
import urllib3

from engine_kit import get, raw_stack
from stowage.sealed import PREFIX, Sealer, SealError
from stowage.testing.harness import basic_auth
from stowage.testing.slapd import use_directory

pytestmark = pytest.mark.skipif(os.environ.get("STOWAGE_TEST_CATALOG") == "postgresql",
                                reason="reads the SQLite catalog file")

LDAP = "/service/rest/v1/security/ldap"


def catalog_copy(test_stowage, *, raw: bool = True) -> bytes:
    """Everything a copy of the catalog holds: the bytes of its files and every row of every table."""
    path = Path(test_stowage.stowage.catalog.path)
    everything = b"".join(p.read_bytes() for p in path.parent.glob(f"{path.name}*")) if raw else b""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        rows = [repr(row) for table in tables for row in db.execute(f'SELECT * FROM "{table}"')]
    return everything + "\n".join(rows).encode()


def test_seal_round_trip_and_versioned_prefix():
    sealer = Sealer(b"k" * 64)
    sealed = sealer.seal("hunter2")
    assert sealed.startswith(PREFIX) and "hunter2" not in sealed
    assert sealed != sealer.seal("hunter2")  # a fresh nonce each time: equal secrets do not look equal
    assert sealer.unseal(sealed) == "hunter2" and sealer.seal(sealed) == sealed
    assert sealer.unseal("legacy clear") == "legacy clear"
    with pytest.raises(SealError, match="another secret key"):
        Sealer(b"x" * 64).unseal(sealed)
    with pytest.raises(SealError, match="damaged"):
        sealer.unseal(PREFIX + "!!!")


def test_proxy_credentials_are_sealed_and_still_sent(stowage_app, live_server_factory, fault_upstream):
    fault_upstream.require_auth(basic=("deployer", "pw-proxy-5e4led"))
    fault_upstream.put("private.bin", b"private")
    raw_stack(stowage_app, fault_upstream, http_client={"autoBlock": False, "authentication": {
        "type": "username", "username": "deployer", "password": "pw-proxy-5e4led"}})
    server = live_server_factory(stowage_app)
    assert get(f"{server.url}/repository/raw-proxy/private.bin").data == b"private"
    assert b"pw-proxy-5e4led" not in catalog_copy(stowage_app)
    stored = stowage_app.stowage.catalog.get_repository("raw-proxy")
    assert stored["httpClient"]["authentication"]["password"].startswith(PREFIX)
    # An update that leaves the password out keeps it (still sealed, still working).
    settings = get(f"{server.url}/service/rest/v1/repositories/raw/proxy/raw-proxy", headers=stowage_app.admin)
    assert b"pw-proxy-5e4led" not in settings.data and PREFIX.encode() not in settings.data
    answer = urllib3.request("PUT", f"{server.url}/service/rest/v1/repositories/raw/proxy/raw-proxy",
                             body=settings.data, headers={**stowage_app.admin, "Content-Type": "application/json"})
    assert answer.status == 204, answer.data
    fault_upstream.put("second.bin", b"second")
    assert get(f"{server.url}/repository/raw-proxy/second.bin").data == b"second"
    assert b"pw-proxy-5e4led" not in catalog_copy(stowage_app)


def test_legacy_clear_secrets_are_sealed_at_start(stowage_factory, fault_upstream, tmp_path):
    data_dir = tmp_path / "node"
    first = stowage_factory(data_dir=data_dir)
    raw_stack(first, fault_upstream, http_client={"authentication": {
        "type": "username", "username": "deployer", "password": "pw-legacy-clear"}})
    # Written as a release before sealing did: the clear value straight into the catalog.
    catalog = first.stowage.catalog
    document = dict(catalog.get_repository("raw-proxy"))
    document["httpClient"]["authentication"]["password"] = "pw-legacy-clear"
    catalog.save_repository("raw-proxy", "raw", "proxy", document)
    catalog.put_document("security.ldap", "legacy", {"name": "legacy", "authPassword": "pw-ldap-clear"})
    assert b"pw-legacy-clear" in catalog_copy(first)
    # Still read as it is before the pass (a node running the old release may have written it).
    assert first.stowage.unseal("pw-legacy-clear") == "pw-legacy-clear"
    second = stowage_factory(data_dir=data_dir)  # start-up: the one-time pass
    # Rows only: SQLite's free pages may keep the overwritten clear bytes until a VACUUM (docs/security.md).
    copy = catalog_copy(second, raw=False)
    assert b"pw-legacy-clear" not in copy and b"pw-ldap-clear" not in copy
    assert second.stowage.seal_stored_secrets() == 0  # idempotent: nothing left to seal
    fault_upstream.require_auth(basic=("deployer", "pw-legacy-clear"))
    fault_upstream.put("after.bin", b"after")
    assert second.client.simulate_get("/repository/raw-proxy/after.bin").content == b"after"


def test_a_secret_sealed_with_another_key_is_a_clear_503(stowage_factory, fault_upstream, tmp_path, caplog):
    data_dir = tmp_path / "node"
    first = stowage_factory(data_dir=data_dir, secret_key="a" * 64)
    raw_stack(first, fault_upstream, http_client={"autoBlock": False, "authentication": {
        "type": "username", "username": "deployer", "password": "pw-other-key"}})
    fault_upstream.require_auth(basic=("deployer", "pw-other-key"))
    fault_upstream.put("file.bin", b"content")
    assert first.client.simulate_get("/repository/raw-proxy/file.bin").status_code == 200
    wrong = stowage_factory(data_dir=data_dir, secret_key="b" * 64)
    answer = wrong.client.simulate_get("/repository/raw-proxy/other.bin")
    assert answer.status_code == 503, answer.text
    assert "raw-proxy" in answer.text and "another secret key" in answer.text
    # The other repositories keep working, and the REST API still lists the broken one.
    assert wrong.client.simulate_get("/repository/raw-hosted/none.bin").status_code == 404
    listed = wrong.client.simulate_get("/service/rest/v1/repositories", headers=wrong.admin)
    assert listed.status_code == 200 and "raw-proxy" in listed.text
    assert "raw-proxy" in caplog.text and "another secret key" in caplog.text


def test_ldap_bind_password_is_sealed_and_binds(stowage_factory, slapd):
    app = stowage_factory(anonymous_access=False)
    use_directory(app, slapd)
    copy = catalog_copy(app)
    assert slapd.admin_password.encode() not in copy and PREFIX.encode() in copy
    assert app.stowage.security.check_password("alice", "alice-ldap-pw").source == "LDAP"
    # An update that omits authPassword keeps it: still sealed, still binding.
    settings = slapd.server_settings()
    del settings["authPassword"]
    app.stowage.security.password_realms["LdapRealm"].forget()
    assert app.client.simulate_put(f"{LDAP}/{settings['name']}", json=settings, headers=app.admin).status_code == 204
    assert slapd.admin_password.encode() not in catalog_copy(app)
    assert app.stowage.security.check_password("alice", "alice-ldap-pw").source == "LDAP"


def test_ldap_bind_password_sealed_with_another_key_names_the_server(stowage_factory, slapd, tmp_path, caplog):
    data_dir = tmp_path / "node"
    use_directory(stowage_factory(data_dir=data_dir, secret_key="a" * 64, anonymous_access=False), slapd)
    wrong = stowage_factory(data_dir=data_dir, secret_key="b" * 64, anonymous_access=False)
    answer = wrong.client.simulate_get("/service/rest/v1/status/check", headers=basic_auth("alice", "alice-ldap-pw"))
    assert answer.status_code == 401  # the directory cannot be asked: no sign-in, and no 500
    assert "bind password cannot be read" in caplog.text and "another secret key" in caplog.text


def test_s3_secret_is_sealed_and_the_store_works(stowage_factory, live_server_factory, s3_server, s3_bucket,
                                                  tmp_path, caplog):
    data_dir = tmp_path / "node"
    app = stowage_factory(data_dir=data_dir)
    live = live_server_factory(app)
    body = {"name": "s3-sealed", "bucketConfiguration": s3_server.bucket_configuration(s3_bucket, prefix="sealed")}
    admin = basic_auth("admin", app.admin_password)
    assert urllib3.request("POST", f"{live.url}/service/rest/v1/blobstores/s3", json=body, headers=admin).status == 204
    assert s3_server.secret_key.encode() not in catalog_copy(app)
    # Another process (a restart, another worker) opens the store from the catalog and writes to it.
    again = stowage_factory(data_dir=data_dir)
    again.create_repository(name="on-s3", format="raw", type="hosted",
                            storage={"blobStoreName": "s3-sealed", "writePolicy": "ALLOW"})
    put = again.client.simulate_put("/repository/on-s3/a.txt", body=b"on s3", headers=again.admin)
    assert put.status_code == 201, put.text
    assert [k for k in s3_server.keys(s3_bucket) if k.startswith("sealed/")]
    assert s3_server.secret_key.encode() not in catalog_copy(again)
    wrong = stowage_factory(data_dir=data_dir, secret_key="b" * 64)
    answer = wrong.client.simulate_get("/repository/on-s3/a.txt")
    assert answer.status_code == 503, answer.text
    assert "s3-sealed" in answer.text and "another secret key" in answer.text
    assert "blob store s3-sealed cannot be opened" in caplog.text


def test_backup_and_restore_keep_sealed_secrets_usable(stowage_factory, fault_upstream, tmp_path):
    from stowage.backup.create import run_backup
    from stowage.backup.restore import run_restore

    app = stowage_factory(data_dir=tmp_path / "node")
    raw_stack(app, fault_upstream, http_client={"autoBlock": False, "authentication": {
        "type": "username", "username": "deployer", "password": "pw-backed-up"}})
    report = run_backup(app.stowage, tmp_path / "backup")
    assert report.ok
    catalog_files = [p for p in (tmp_path / "backup").rglob("catalog.sqlite*") if p.is_file()]
    assert catalog_files and not any(b"pw-backed-up" in p.read_bytes() for p in catalog_files)
    run_restore(tmp_path / "backup", tmp_path / "restored")  # secret.key comes along
    again = stowage_factory(data_dir=tmp_path / "restored")
    fault_upstream.require_auth(basic=("deployer", "pw-backed-up"))
    fault_upstream.put("restored.bin", b"restored")
    assert again.client.simulate_get("/repository/raw-proxy/restored.bin").content == b"restored"
