"""The group engine: configuration checks, read-only groups, member order, metadata merge, the guard."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from engine_kit import age, get, raw_stack
from stowage.errors import ConfigurationError
from stowage.plugin import (AssetKind, Format, FormatHandler, MemberDocument, MetadataBuilder, RepoRequest,
                            guard_names, hookimpl)

# -- a tiny format with metadata, to exercise merging as a format plugin would ----------------------------
# Content: ``pkgs/<name>/<version>.bin``. Metadata: ``index/<name>.json`` = {"name": .., "versions": [..]}.

MERGES: list[str] = []


def _build(repository, match):
    name = match.group("name")
    versions = sorted(a.path.rsplit("/", 1)[1].removesuffix(".bin")
                      for a in repository.stowage.catalog.iter_assets(repository.name, prefix=f"pkgs/{name}/"))
    return {"name": name, "versions": versions} if versions else None


def _parse(repository, match, stream):
    return json.load(stream)


def _merge(repository, match, members: list[MemberDocument]):
    MERGES.append(repository.name)
    guard = guard_names(members, lambda document: [document["name"]],
                        repository.config.group.allow_proxy_names, normalize=str.lower)
    versions: list[str] = []
    for member in members:
        if guard.allows(member, member.document["name"]):
            versions += [v for v in member.document["versions"] if v not in versions]
    return {"name": match.group("name"), "versions": versions}


class EngineTestHandler(FormatHandler):
    methods = ("GET", "HEAD", "PUT")

    def classify(self, path: str) -> AssetKind:
        return AssetKind.METADATA if path.startswith("index/") else AssetKind.CONTENT

    def on_get(self, request: RepoRequest) -> None:
        if request.path.startswith("index/"):
            request.send_bytes(json.dumps(request.repository.metadata(request.path)).encode(), "application/json")
        else:
            super().on_get(request)

    def expected_digests(self, repository, path):
        # ``sha/<hex>``: content addressed by its sha256, as registries address blobs.
        return {"sha256": path[4:]} if path.startswith("sha/") else {}

    def on_put(self, request: RepoRequest) -> None:
        body, length = request.require_body()
        request.repository.store(request.path, body, length=length)
        request.resp.status = "201 Created"


class EngineTestPlugin:
    @staticmethod
    @hookimpl
    def stowage_register_formats():
        return [Format(name="enginetest", handler=EngineTestHandler)]

    @staticmethod
    @hookimpl
    def stowage_register_metadata_builders():
        return [MetadataBuilder(format="enginetest", name="index", pattern=r"index/(?P<name>[^/]+)\.json",
                                build=_build, merge=_merge, parse=_parse)]


@pytest.fixture
def app(stowage_factory):
    return stowage_factory(plugins=[EngineTestPlugin()])


def _meta_stack(ts, upstream, *, allow=(), metadata_max_age=60):
    ts.create_repository(name="t-hosted", format="enginetest", type="hosted")
    ts.create_repository(name="t-proxy", format="enginetest", type="proxy",
                         proxy={"remoteUrl": upstream.url, "metadataMaxAge": metadata_max_age})
    ts.create_repository(name="t-group", format="enginetest", type="group",
                         group={"memberNames": ["t-hosted", "t-proxy"], "allowProxyNames": list(allow)})


# -- configuration ----------------------------------------------------------------------------------------

def test_rest_refuses_a_cycle_and_names_the_members(app, live_server_factory):
    server = live_server_factory(app)
    app.create_repository(name="raw-hosted", format="raw", type="hosted")
    base = f"{server.url}/service/rest/v1/repositories/raw/group"
    assert get(base, method="POST", headers=app.admin,
               json={"name": "g1", "online": True, "group": {"memberNames": ["raw-hosted"]}}).status == 201
    assert get(base, method="POST", headers=app.admin,
               json={"name": "g2", "online": True, "group": {"memberNames": ["g1"]}}).status == 201
    storage = {"blobStoreName": "default", "strictContentTypeValidation": True}  # an update carries all of it
    refused = get(f"{base}/g1", method="PUT", headers=app.admin, json={
        "name": "g1", "online": True, "storage": storage, "group": {"memberNames": ["raw-hosted", "g2"]}})
    assert refused.status == 400
    message = refused.data.decode()
    assert "cycle" in message and "g1" in message and "g2" in message
    itself = get(base, method="POST", headers=app.admin,
                 json={"name": "g3", "online": True, "group": {"memberNames": ["g3"]}})
    assert itself.status == 400 and b"g3" in itself.data


def test_rest_refuses_a_member_of_another_format(app, live_server_factory):
    server = live_server_factory(app)
    app.create_repository(name="t-hosted", format="enginetest", type="hosted")
    refused = get(f"{server.url}/service/rest/v1/repositories/raw/group", method="POST", headers=app.admin,
                  json={"name": "raw-group", "online": True, "group": {"memberNames": ["t-hosted"]}})
    assert refused.status == 400
    assert b"t-hosted" in refused.data and b"enginetest" in refused.data


def test_config_file_refuses_a_cycle_naming_the_members(tmp_path):
    config = tmp_path / "cycle.toml"
    config.write_text(f'''
[server]
dataDir = "{tmp_path / 'data'}"

[[repositories]]
name = "group-a"
format = "raw"
type = "group"
group = {{ memberNames = ["group-b"] }}

[[repositories]]
name = "group-b"
format = "raw"
type = "group"
group = {{ memberNames = ["group-a"] }}
''')
    result = subprocess.run([sys.executable, "-m", "stowage.cli", "repositories", "--config", str(config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "cycle" in result.stderr and "group-a" in result.stderr and "group-b" in result.stderr


def test_config_file_refuses_a_member_of_another_format(stowage_factory):
    with pytest.raises(ConfigurationError) as refused:
        stowage_factory(plugins=[EngineTestPlugin()], repositories=[
            {"name": "t-hosted", "format": "enginetest", "type": "hosted"},
            {"name": "raw-group", "format": "raw", "type": "group", "group": {"memberNames": ["t-hosted"]}},
        ])
    assert "t-hosted" in refused.value.message and "enginetest" in refused.value.message


# -- content ----------------------------------------------------------------------------------------------

def test_group_is_read_only(stowage_app, live_server_factory, fault_upstream):
    raw_stack(stowage_app, fault_upstream)
    server = live_server_factory(stowage_app)
    put = get(f"{server.url}/repository/raw-group/x.txt", method="PUT", body=b"x", headers=stowage_app.admin)
    assert put.status == 405 and b"group" in put.data and b"hosted" in put.data
    delete = get(f"{server.url}/repository/raw-group/x.txt", method="DELETE", headers=stowage_app.admin)
    assert delete.status == 405


def test_first_member_that_has_it_wins_and_hosted_copies_beat_remote_fetches(stowage_app, live_server_factory,
                                                                            fault_upstream):
    raw_stack(stowage_app, fault_upstream)
    stowage_app.create_repository(name="raw-remote-first", format="raw", type="group",
                                  group={"memberNames": ["raw-proxy", "raw-hosted"]})
    server = live_server_factory(stowage_app)
    fault_upstream.put("lib/a.txt", b"from upstream")
    put = get(f"{server.url}/repository/raw-hosted/lib/a.txt", method="PUT", body=b"from hosted",
              headers=stowage_app.admin)
    assert put.status == 201
    assert get(f"{server.url}/repository/raw-group/lib/a.txt").data == b"from hosted"
    # Remote first in order, but only the hosted member holds it: no upstream request is waited on.
    assert get(f"{server.url}/repository/raw-remote-first/lib/a.txt").data == b"from hosted"
    assert fault_upstream.count("lib/a.txt") == 0
    # Once the proxy has it cached, member order decides.
    assert get(f"{server.url}/repository/raw-proxy/lib/a.txt").data == b"from upstream"
    assert get(f"{server.url}/repository/raw-remote-first/lib/a.txt").data == b"from upstream"
    assert get(f"{server.url}/repository/raw-group/lib/a.txt").data == b"from hosted"
    assert get(f"{server.url}/repository/raw-group/lib/none.txt").status == 404


def test_an_offline_or_failing_member_does_not_hide_the_next(stowage_app, live_server_factory, fault_upstream):
    stowage_app.create_repository(name="raw-hosted", format="raw", type="hosted")
    stowage_app.create_repository(name="dead-proxy", format="raw", type="proxy",
                                  proxy={"remoteUrl": "http://127.0.0.1:9/"},
                                  httpClient={"connection": {"timeout": 1}})
    stowage_app.create_repository(name="g", format="raw", type="group",
                                  group={"memberNames": ["dead-proxy", "raw-hosted"]})
    server = live_server_factory(stowage_app)
    get(f"{server.url}/repository/raw-hosted/b.txt", method="PUT", body=b"b", headers=stowage_app.admin)
    assert get(f"{server.url}/repository/g/b.txt").data == b"b"
    failed = get(f"{server.url}/repository/g/c.txt")
    assert failed.status in (502, 503) and b"dead-proxy" in failed.data


# -- metadata -----------------------------------------------------------------------------------------------

def test_metadata_is_merged_in_member_order_cached_and_invalidated(app, live_server_factory, fault_upstream):
    _meta_stack(app, fault_upstream, allow=["public"])  # the guard would otherwise hide its proxy versions
    server = live_server_factory(app)
    fault_upstream.put("index/public.json", json.dumps({"name": "public", "versions": ["1.0", "2.0"]}))
    put = get(f"{server.url}/repository/t-hosted/pkgs/public/0.9.bin", method="PUT", body=b"old",
              headers=app.admin)
    assert put.status == 201
    url = f"{server.url}/repository/t-group/index/public.json"
    MERGES.clear()
    assert get(url).json() == {"name": "public", "versions": ["0.9", "1.0", "2.0"]}
    assert get(url).json()["versions"] == ["0.9", "1.0", "2.0"]
    assert MERGES == ["t-group"], "the merged document is cached while no member changes"

    get(f"{server.url}/repository/t-hosted/pkgs/public/0.8.bin", method="PUT", body=b"older", headers=app.admin)
    assert get(url).json()["versions"] == ["0.8", "0.9", "1.0", "2.0"]
    assert len(MERGES) == 2

    # The upstream document changes; within metadataMaxAge nothing is asked, after it a revalidation.
    fault_upstream.put("index/public.json", json.dumps({"name": "public", "versions": ["1.0", "2.0", "3.0"]}))
    assert get(url).json()["versions"] == ["0.8", "0.9", "1.0", "2.0"]
    assert fault_upstream.count("index/public.json") == 1
    age(app, "t-proxy", "index/public.json", 61 * 60)
    assert get(url).json()["versions"] == ["0.8", "0.9", "1.0", "2.0", "3.0"]
    assert fault_upstream.requests("index/public.json")[-1].status == 200
    assert len(MERGES) == 3

    # Aged but unchanged upstream: a conditional request, a 304, and the cached merge is kept.
    age(app, "t-proxy", "index/public.json", 61 * 60)
    assert get(url).json()["versions"][-1] == "3.0"
    last = fault_upstream.requests("index/public.json")[-1]
    assert last.status == 304 and last.header("If-None-Match")
    assert len(MERGES) == 3

    # invalidate-cache: the next request revalidates regardless of age.
    before = fault_upstream.count("index/public.json")
    assert get(f"{server.url}/service/rest/v1/repositories/t-group/invalidate-cache", method="POST",
               headers=app.admin).status == 204
    assert get(url).status == 200
    assert fault_upstream.count("index/public.json") == before + 1
    assert get(url).status == 200
    assert fault_upstream.count("index/public.json") == before + 1


def test_metadata_max_age_zero_revalidates_every_request(app, live_server_factory, fault_upstream):
    _meta_stack(app, fault_upstream, metadata_max_age=0)
    server = live_server_factory(app)
    fault_upstream.put("index/lib.json", json.dumps({"name": "lib", "versions": ["1"]}))
    url = f"{server.url}/repository/t-proxy/index/lib.json"
    assert get(url).json()["versions"] == ["1"]
    assert get(url).json()["versions"] == ["1"]
    assert [entry.status for entry in fault_upstream.requests("index/lib.json")] == [200, 304]
    # Through a group too: one conditional request per client request, not one per look at the member.
    group_url = f"{server.url}/repository/t-group/index/lib.json"
    assert get(group_url).json()["versions"] == ["1"]
    assert [entry.status for entry in fault_upstream.requests("index/lib.json")] == [200, 304, 304]


def test_dependency_confusion_guard_hides_proxy_versions_of_hosted_names(app, live_server_factory,
                                                                          fault_upstream):
    _meta_stack(app, fault_upstream)
    app.create_repository(name="t-open", format="enginetest", type="group",
                          group={"memberNames": ["t-hosted", "t-proxy"], "allowProxyNames": ["intern*"]})
    server = live_server_factory(app)
    get(f"{server.url}/repository/t-hosted/pkgs/internal/1.0.bin", method="PUT", body=b"ours", headers=app.admin)
    fault_upstream.put("index/internal.json", json.dumps({"name": "internal", "versions": ["1.0", "99.0"]}))
    fault_upstream.put("index/public.json", json.dumps({"name": "public", "versions": ["5.0"]}))
    assert get(f"{server.url}/repository/t-group/index/internal.json").json()["versions"] == ["1.0"]
    assert get(f"{server.url}/repository/t-group/index/public.json").json()["versions"] == ["5.0"]
    assert get(f"{server.url}/repository/t-open/index/internal.json").json()["versions"] == ["1.0", "99.0"]


def test_guard_names_unit():
    class Doc:
        pass

    hosted = MemberDocument(repository=None, document={"names": ["Private-Lib", "shared"]}, origin="hosted")
    proxy = MemberDocument(repository=None, document={"names": ["private-lib", "requests", "shared"]},
                           origin="proxy")
    guard = guard_names([hosted, proxy], lambda d: d["names"], ["shar*", "re:^x-.*$"],
                        normalize=lambda n: re.sub(r"[-_.]+", "-", n).lower())
    assert guard.hosted_names == frozenset({"private-lib", "shared"})
    assert guard.filter(proxy, proxy.document["names"]) == ["requests", "shared"]
    assert guard.filter(hosted, hosted.document["names"]) == ["Private-Lib", "shared"]
    assert not guard.allows(proxy, "PRIVATE_lib")


def test_a_failing_proxy_member_leaves_its_part_out_of_merged_metadata(app, live_server_factory, fault_upstream):
    _meta_stack(app, fault_upstream)
    server = live_server_factory(app)
    get(f"{server.url}/repository/t-hosted/pkgs/ours/1.0.bin", method="PUT", body=b"ours", headers=app.admin)
    fault_upstream.stop()
    answer = get(f"{server.url}/repository/t-group/index/ours.json")
    assert answer.status == 200 and answer.json()["versions"] == ["1.0"]
    assert get(f"{server.url}/repository/t-group/index/theirs.json").status in (502, 503)


def test_a_body_with_the_wrong_digest_is_never_cached_nor_served_complete(app, live_server_factory,
                                                                           fault_upstream, tmp_path):
    import hashlib
    import os

    from engine_kit import curl

    _meta_stack(app, fault_upstream)
    server = live_server_factory(app)
    good = os.urandom(2 * 1024 * 1024)
    digest = hashlib.sha256(good).hexdigest()
    fault_upstream.put(f"sha/{digest}", good[:-1] + b"!")  # same length, one byte wrong
    fault_upstream.throttle(8 * 1024 * 1024)  # the client is streaming when the mismatch is found
    out = tmp_path / "blob"
    bad = curl("-o", str(out), "-w", "%{http_code}", f"{server.url}/repository/t-proxy/sha/{digest}")
    assert bad.returncode != 0 or bad.stdout != "200", bad
    assert out.stat().st_size < len(good)
    assert app.stowage.catalog.get_asset("t-proxy", f"sha/{digest}") is None

    fault_upstream.put(f"sha/{digest}", good)
    fine = curl("-o", str(out), "-w", "%{http_code}", f"{server.url}/repository/t-proxy/sha/{digest}")
    assert fine.returncode == 0 and fine.stdout == "200"
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest
    assert app.stowage.catalog.get_asset("t-proxy", f"sha/{digest}").blob_sha256 == digest
