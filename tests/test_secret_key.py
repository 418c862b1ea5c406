"""Issue 10 item 3 (the signing-key part) and the token migration: the server's secret comes from the
configuration, the environment or a private file in the data directory, never from the catalog."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlite_utils import Database

from stowage.catalog.schema import m001_initial, m010_token_identity
from stowage.errors import ConfigurationError
from stowage.secret_key import derive_key, load_secret_key


def test_configured_key_wins_over_environment_and_file(tmp_path, monkeypatch):
    monkeypatch.setenv("STOWAGE_SECRET_KEY", "from-the-environment")
    assert load_secret_key("from-the-config", tmp_path) == b"from-the-config"
    assert load_secret_key("", tmp_path) == b"from-the-environment"
    assert not (tmp_path / "secret.key").exists()


def test_generated_key_is_private_stable_and_shared_by_racing_workers(tmp_path, monkeypatch):
    monkeypatch.delenv("STOWAGE_SECRET_KEY", raising=False)
    data_dir = tmp_path / "data"
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: load_secret_key("", data_dir), range(16)))
    assert len(keys) == 1 and len(keys.pop()) == 64
    assert stat.S_IMODE(os.stat(data_dir / "secret.key").st_mode) == 0o600
    assert [p.name for p in data_dir.iterdir()] == ["secret.key"]  # no temporary files left behind
    assert load_secret_key("", data_dir) == (data_dir / "secret.key").read_text().strip().encode()


def test_an_unusable_key_file_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("STOWAGE_SECRET_KEY", raising=False)
    (tmp_path / "secret.key").write_text("short\n")
    with pytest.raises(ConfigurationError, match="secret.key"):
        load_secret_key("", tmp_path)


def test_derived_keys_differ_by_purpose():
    assert derive_key(b"k" * 32, "docker-token") != derive_key(b"k" * 32, "session")


def test_migration_binds_old_tokens_and_drops_the_catalog_secret(tmp_path):
    db = Database(tmp_path / "catalog.sqlite")
    m001_initial(db)
    now = time.time()

    def put(namespace, key, value):
        db.execute("INSERT INTO documents VALUES (?, ?, ?, ?)", (namespace, key, json.dumps(value), now))

    put("security.users", "dev", {"roles": [], "passwordHash": "x", "status": "active"})
    live, orphan = (hashlib.sha256(t.encode()).hexdigest() for t in ("npm_live", "npm_orphan"))
    put("security.tokens", live, {"user": "dev", "realm": "npm", "created": now - 10, "expires": None})
    put("security.tokens", orphan, {"user": "gone", "realm": "npm", "created": now, "expires": None})
    directory = hashlib.sha256(b"npm_directory").hexdigest()
    put("security.tokens", directory, {"user": "carol", "source": "LDAP", "realm": "npm", "created": now,
                                       "expires": None})
    put("docker", "token-secret", "ab" * 32)
    m010_token_identity(db)

    documents = {(n, k): json.loads(v) for n, k, v in db.execute("SELECT namespace, key, value FROM documents")}
    user = documents[("security.users", "dev")]
    assert len(user["identity"]) == 32 and user["generation"] == 0
    token = documents[("security.tokens", live)]
    assert token["identity"] == user["identity"] and token["audiences"] == ["npm"] and token["id"] == live[:24]
    assert now < token["expires"] <= now + 90 * 86400 + 5
    assert ("security.tokens", orphan) not in documents
    kept = documents[("security.tokens", directory)]
    assert (kept["source"], kept["identity"], kept["user_id"]) == ("LDAP", "", "carol")
    assert ("docker", "token-secret") not in documents
