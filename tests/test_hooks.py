"""One test per hook in ``stowage.hookspecs`` (tests/test_docs.py checks that each has one).

Each builds a real app with the test kit and a plugin implementing the hook, and drives it over HTTP.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from stowage.backends import BlobStoreConfig, FileBlobStore, SqliteCatalog
from stowage.plugin import Action, User, hookimpl
from stowage.settings import CatalogSettings

sys.path.insert(0, str(Path(__file__).parent / "example_plugin"))
from stowage_tiny import plugin as tiny  # noqa: E402  (the plugin of docs/writing-a-plugin.md)


@pytest.fixture
def tiny_app(stowage_factory):
    return stowage_factory(plugins=[tiny])


# -- registration ------------------------------------------------------------------------------------

def test_hook_stowage_register_formats(tiny_app, live_server_factory, tmp_path):
    from core_helpers import curl

    tiny_app.create_repository(name="tools", format="tiny", type="hosted", tiny={"indexTitle": "Tools"})
    server = live_server_factory(tiny_app)
    auth = ("-u", f"admin:{tiny_app.admin_password}")
    url = f"{server.url}/repository/tools/bin/tool.sh"
    assert curl(*auth, "-X", "PUT", "--data-binary", "echo hi", "-o", "/dev/null", "-w", "%{http_code}", url).stdout == "201"
    # the format's default write policy (ALLOW) applies
    assert curl(*auth, "-X", "PUT", "--data-binary", "echo hey", "-o", "/dev/null", "-w", "%{http_code}", url).stdout == "201"
    assert curl(url).stdout == "echo hey"
    assert curl("-X", "PUT", "--data-binary", "x", "-o", "/dev/null", "-w", "%{http_code}", url).stdout == "401"
    refused = curl(*auth, "-X", "PUT", "--data-binary", "x", "-w", "\n%{http_code}",
                   f"{server.url}/repository/tools/-/index.json").stdout
    assert refused.endswith("400") and "server's" in refused
    assert curl(*auth, "-X", "DELETE", "-o", "/dev/null", "-w", "%{http_code}", url).stdout == "204"
    assert curl("-o", "/dev/null", "-w", "%{http_code}", url).stdout == "404"
    plugins = tiny_app.client.simulate_get("/-/plugins.json").json
    assert "tiny" in plugins["formats"]
    assert tiny_app.stowage.repository("tools").config.section("tiny") == tiny.TinySettings(index_title="Tools")


def test_hook_stowage_register_metadata_builders(tiny_app):
    app = tiny_app
    app.create_repository(name="one", format="tiny", type="hosted")
    app.create_repository(name="two", format="tiny", type="hosted", tiny={"indexTitle": "second"})
    app.create_repository(name="all", format="tiny", type="group", group={"memberNames": ["one", "two"]})
    for repo, path, body in (("one", "a.txt", b"a from one"), ("two", "a.txt", b"a from two"),
                             ("two", "b.txt", b"b from two")):
        assert app.client.simulate_put(f"/repository/{repo}/{path}", body=body, headers=app.admin).status_code == 201
    index = app.client.simulate_get("/repository/two/-/index.json")
    assert index.headers["content-type"] == "application/json"
    assert index.json["title"] == "second" and sorted(index.json["files"]) == ["a.txt", "b.txt"]
    merged = app.client.simulate_get("/repository/all/-/index.json").json
    # index and downloads agree: the group serves a.txt from its first member, and lists that digest
    served = app.client.simulate_get("/repository/all/a.txt").content
    assert served == b"a from one"
    import hashlib

    assert merged["files"] == {"a.txt": hashlib.sha256(b"a from one").hexdigest(),
                               "b.txt": hashlib.sha256(b"b from two").hexdigest()}
    # a change in a member shows up in the group's cached index at once (cache keyed on revisions)
    app.client.simulate_put("/repository/one/c.txt", body=b"c", headers=app.admin)
    assert "c.txt" in app.client.simulate_get("/repository/all/-/index.json").json["files"]
    etag = app.client.simulate_get("/repository/all/-/index.json").headers["etag"]
    assert app.client.simulate_get("/repository/all/-/index.json",
                                   headers={"If-None-Match": etag}).status_code == 304


def test_hook_stowage_register_routes(tiny_app):
    tiny_app.create_repository(name="tools", format="tiny", type="hosted")
    tiny_app.create_repository(name="files", format="raw", type="hosted")
    assert tiny_app.client.simulate_get("/-/tiny").json == ["tools"]


class CountingCatalog(SqliteCatalog):
    def __init__(self, path):
        super().__init__(path)
        self.asset_lookups = 0

    def get_asset(self, repository, path):
        self.asset_lookups += 1
        return super().get_asset(repository, path)


class CountingCatalogPlugin:
    @hookimpl
    def stowage_catalog(self, settings):
        if settings.catalog.type != "counting":
            return None
        return CountingCatalog(Path(settings.catalog.path))


def test_hook_stowage_catalog(stowage_factory, tmp_path):
    path = tmp_path / "elsewhere" / "catalog.db"
    app = stowage_factory(plugins=[CountingCatalogPlugin()], catalog=CatalogSettings(type="counting", path=str(path)))
    assert isinstance(app.stowage.catalog, CountingCatalog)
    app.create_repository(name="files", format="raw", type="hosted")
    app.client.simulate_put("/repository/files/a.txt", body=b"x", headers=app.admin)
    before = app.stowage.catalog.asset_lookups
    assert app.client.simulate_get("/repository/files/a.txt").text == "x"
    assert app.stowage.catalog.asset_lookups == before + 1
    assert path.exists()
    # an unknown catalog type is a configuration error, not a silent fallback
    from stowage.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="no plugin provides a catalog of type 'nosuch'"):
        stowage_factory(catalog=CatalogSettings(type="nosuch"))


class ShardedBlobStore(FileBlobStore):
    """A File store whose root comes from the config's attributes (a stand-in for S3 & co.)."""


class ShardedBlobStorePlugin:
    @hookimpl
    def stowage_blob_store(self, config, settings):
        if config.type != "Sharded":
            return None
        return ShardedBlobStore(config, Path(config.attributes["root"]))


def test_hook_stowage_blob_store(stowage_factory, tmp_path):
    app = stowage_factory(plugins=[ShardedBlobStorePlugin()])
    root = tmp_path / "sharded-root"
    store = app.stowage.create_blob_store(BlobStoreConfig(name="fast", type="Sharded", attributes={"root": str(root)}))
    assert isinstance(store, ShardedBlobStore)
    app.create_repository(name="files", format="raw", type="hosted", storage={"blobStoreName": "fast"})
    app.client.simulate_put("/repository/files/a.bin", body=b"sharded bytes", headers=app.admin)
    import hashlib

    digest = hashlib.sha256(b"sharded bytes").hexdigest()
    assert (root / "blobs" / digest[:2] / digest[2:4] / digest).read_bytes() == b"sharded bytes"
    assert app.client.simulate_get("/repository/files/a.bin").content == b"sharded bytes"
    from stowage.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="no plugin handles type 'Tape'"):
        app.stowage.create_blob_store(BlobStoreConfig(name="t", type="Tape"))


class StartedRecorder:
    def __init__(self):
        self.started = []

    @hookimpl
    def stowage_app_started(self, stowage):
        # repositories from the configuration are already there when the hook runs
        self.started.append((stowage, [r.name for r in stowage.repositories()]))


def test_hook_stowage_app_started(stowage_factory):
    recorder = StartedRecorder()
    app = stowage_factory(plugins=[recorder], repositories=[{"name": "files", "format": "raw", "type": "hosted"}])
    assert recorder.started == [(app.stowage, ["files"])]


# -- decisions ---------------------------------------------------------------------------------------

class TokenAuth:
    """``Authorization: Token <t>`` for CI robots; everything else falls through to basic auth."""

    @hookimpl
    def stowage_authenticate(self, stowage, scheme, credentials):
        if scheme != "token":
            return None
        if credentials == "robot-secret":
            return User(user_id="robot", roles=("nx-deployer",))
        return None


def test_hook_stowage_authenticate(stowage_factory):
    app = stowage_factory(plugins=[TokenAuth()])
    app.create_repository(name="files", format="raw", type="hosted")
    ok = app.client.simulate_put("/repository/files/a.txt", body=b"x", headers={"Authorization": "Token robot-secret"})
    assert ok.status_code == 201
    asset = app.stowage.catalog.get_asset("files", "a.txt")
    assert asset.attributes["uploader"] == "robot"
    wrong = app.client.simulate_put("/repository/files/b.txt", body=b"x", headers={"Authorization": "Token nope"})
    assert wrong.status_code == 401 and "WWW-Authenticate" in wrong.headers
    # basic auth still works: the plugin said "no opinion"
    assert app.client.simulate_put("/repository/files/c.txt", body=b"x", headers=app.admin).status_code == 201


class ProtectReleases:
    """Nobody, admin included, deletes from repositories named ``release-*``; no opinion elsewhere."""

    def __init__(self):
        self.asked = []

    @hookimpl(tryfirst=True)
    def stowage_permission(self, user, repository, action):
        self.asked.append((user.user_id if user else None, repository.name, action))
        if action is Action.DELETE and repository.name.startswith("release-"):
            return False
        return None


def test_hook_stowage_permission(stowage_factory):
    guard = ProtectReleases()
    app = stowage_factory(plugins=[guard])
    for name in ("release-1", "scratch"):
        app.create_repository(name=name, format="raw", type="hosted")
        app.client.simulate_put(f"/repository/{name}/a.txt", body=b"x", headers=app.admin)
    denied = app.client.simulate_delete("/repository/release-1/a.txt", headers=app.admin)
    assert denied.status_code == 403 and "may not delete repository release-1" in denied.text
    assert app.client.simulate_delete("/repository/scratch/a.txt", headers=app.admin).status_code == 204
    assert ("admin", "release-1", Action.DELETE) in guard.asked
    # the REST API asks the same hook
    asset_id = app.client.simulate_get("/service/rest/v1/assets?repository=release-1").json["items"][0]["id"]
    assert app.client.simulate_delete(f"/service/rest/v1/assets/{asset_id}", headers=app.admin).status_code == 403


# -- events ------------------------------------------------------------------------------------------

class EventRecorder:
    def __init__(self):
        self.events = []

    @hookimpl
    def stowage_asset_stored(self, repository, asset):
        self.events.append(("stored", repository.name, asset.path, asset.blob_sha256, asset.id is not None))

    @hookimpl
    def stowage_asset_deleted(self, repository, asset):
        self.events.append(("deleted", repository.name, asset.path, asset.blob_sha256, asset.id is not None))

    @hookimpl
    def stowage_repository_changed(self, stowage, name, config):
        self.events.append(("repository", name, None if config is None else config.storage.write_policy))


def test_hook_stowage_asset_stored(stowage_factory):
    recorder = EventRecorder()
    app = stowage_factory(plugins=[recorder])
    app.create_repository(name="files", format="raw", type="hosted")
    import hashlib

    app.client.simulate_put("/repository/files/a/b.txt", body=b"payload", headers=app.admin)
    assert ("stored", "files", "a/b.txt", hashlib.sha256(b"payload").hexdigest(), True) in recorder.events
    # a refused write fires nothing
    count = len(recorder.events)
    assert app.client.simulate_put("/repository/files/a/b.txt", body=b"again", headers=app.admin).status_code == 400
    assert len(recorder.events) == count


class CommittedCheck:
    """Looks, from another connection, whether the asset it is told about is committed yet."""

    def __init__(self, catalog_path):
        self.catalog_path = catalog_path
        self.seen = []

    @hookimpl
    def stowage_asset_stored(self, repository, asset):
        import sqlite3

        other = sqlite3.connect(self.catalog_path)
        try:
            rows = other.execute("SELECT COUNT(*) FROM assets WHERE path = ?", (asset.path,)).fetchone()[0]
        finally:
            other.close()
        self.seen.append((asset.path, rows))


def test_asset_events_fire_after_the_outermost_commit(stowage_factory):
    recorder = EventRecorder()
    app = stowage_factory(plugins=[recorder])
    catalog = app.stowage.catalog
    check = CommittedCheck(catalog.path)
    app.stowage.plugins.pm.register(check, name="committed-check")
    app.create_repository(name="files", format="raw", type="hosted")
    files = app.stowage.repository("files")
    with catalog.transaction():  # a caller's transaction around a store: nested, it joins this one
        files.store("nested.txt", io.BytesIO(b"one"))
        assert not [e for e in recorder.events if e[0] == "stored"]  # not yet: the outer may roll back
    assert ("nested.txt", 1) in check.seen  # fired after the commit, when others can see the row
    try:
        with catalog.transaction():
            files.store("undone.txt", io.BytesIO(b"two"))
            raise RuntimeError("the caller gives up")
    except RuntimeError:
        pass
    assert files.resolver.resolve("undone.txt") is None
    assert "undone.txt" not in [e[2] for e in recorder.events]  # a rolled-back write fires nothing
    files.store("plain.txt", io.BytesIO(b"three"))  # no enclosing transaction: fires at once
    assert recorder.events[-1][2] == "plain.txt" and ("plain.txt", 1) in check.seen


def test_hook_stowage_asset_deleted(stowage_factory):
    recorder = EventRecorder()
    app = stowage_factory(plugins=[recorder])
    app.create_repository(name="files", format="raw", type="hosted")
    app.stowage.repository("files").store("x.txt", io.BytesIO(b"gone soon"))
    assert app.client.simulate_delete("/repository/files/x.txt", headers=app.admin).status_code == 204
    import hashlib

    assert recorder.events[-1] == ("deleted", "files", "x.txt", hashlib.sha256(b"gone soon").hexdigest(), True)
    assert app.client.simulate_delete("/repository/files/x.txt", headers=app.admin).status_code == 404
    assert recorder.events[-1][0] == "deleted" and len([e for e in recorder.events if e[0] == "deleted"]) == 1


def test_hook_stowage_repository_changed(stowage_factory):
    from stowage.models import WritePolicy

    recorder = EventRecorder()
    app = stowage_factory(plugins=[recorder])
    v1 = "/service/rest/v1/repositories"
    body = {"name": "files", "online": True, "storage": {"blobStoreName": "default",
                                                          "strictContentTypeValidation": True, "writePolicy": "ALLOW"}}
    assert app.client.simulate_post(f"{v1}/raw/hosted", json=body, headers=app.admin).status_code == 201
    body["storage"]["writePolicy"] = "DENY"
    assert app.client.simulate_put(f"{v1}/raw/hosted/files", json=body, headers=app.admin).status_code == 204
    assert app.client.simulate_delete(f"{v1}/files", headers=app.admin).status_code == 204
    assert [e for e in recorder.events if e[0] == "repository"] == [
        ("repository", "files", WritePolicy.ALLOW), ("repository", "files", WritePolicy.DENY),
        ("repository", "files", None)]


def test_every_hook_here_is_a_real_hookspec():
    from stowage import hookspecs

    names = {name for name in dir(hookspecs) if name.startswith("stowage_")}
    here = {name.removeprefix("test_hook_") for name in globals() if name.startswith("test_hook_")}
    assert here <= names, here - names
    _ = json  # imported for readers extending these tests
