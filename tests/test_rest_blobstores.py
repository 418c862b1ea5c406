"""/service/rest/v1/blobstores on a live server: list, create (persisted, seen by other nodes), quota, delete."""

import pytest
import urllib3

from stowage.testing.harness import basic_auth

V1 = "/service/rest/v1"


@pytest.fixture
def nodes(stowage_factory, live_server_factory, tmp_path):
    first = stowage_factory(data_dir=tmp_path / "shared")
    second = stowage_factory(data_dir=tmp_path / "shared")
    return first, live_server_factory(first), live_server_factory(second)


def test_permissions(nodes):
    ts, one, _ = nodes
    from stowage.security import User
    ts.stowage.security.save_user(User(user_id="dev", roles=("nx-deployer",)), "dev-pw")
    assert urllib3.request("GET", f"{one.url}{V1}/blobstores").status == 401
    assert urllib3.request("GET", f"{one.url}{V1}/blobstores", headers=basic_auth("dev", "dev-pw")).status == 403
    assert urllib3.request("POST", f"{one.url}{V1}/blobstores/file", json={"name": "x"},
                           headers=basic_auth("dev", "dev-pw")).status == 403


def test_create_use_measure_and_delete_a_file_blob_store(nodes, stowage_factory, tmp_path):
    ts, one, two = nodes
    admin = basic_auth("admin", ts.admin_password)
    body = {"name": "big", "path": "big-store", "softQuota": {"type": "spaceUsedQuota", "limit": 10}}
    assert urllib3.request("POST", f"{one.url}{V1}/blobstores/file", json=body, headers=admin).status == 204
    assert urllib3.request("POST", f"{one.url}{V1}/blobstores/file", json=body, headers=admin).status == 400
    bad = {"name": "q", "softQuota": {"type": "spaceHogQuota", "limit": 1}}
    assert urllib3.request("POST", f"{one.url}{V1}/blobstores/file", json=bad, headers=admin).status == 400

    # the other node sees it at once, and a repository created there can use it
    listed = {b["name"]: b for b in urllib3.request("GET", f"{two.url}{V1}/blobstores", headers=admin).json()}
    assert set(listed) == {"default", "big"}
    assert listed["big"]["type"] == "File" and listed["big"]["blobCount"] == 0
    assert listed["big"]["availableSpaceInBytes"] > 0
    created = urllib3.request("POST", f"{two.url}{V1}/repositories/raw/hosted", headers=admin,
                              json={"name": "on-big", "online": True, "storage": {"blobStoreName": "big"}})
    assert created.status in (200, 201, 204), created.data
    config = urllib3.request("GET", f"{one.url}{V1}/blobstores/file/big", headers=admin).json()
    assert config["path"].endswith("big-store") and config["softQuota"] == body["softQuota"]

    quota = urllib3.request("GET", f"{one.url}{V1}/blobstores/big/quota-status", headers=admin).json()
    assert quota == {"isViolation": False, "blobStoreName": "big", "message": quota["message"]}
    assert urllib3.request("PUT", f"{one.url}/repository/on-big/f.bin", body=b"x" * 64, headers=admin).status == 201
    listed = {b["name"]: b for b in urllib3.request("GET", f"{one.url}{V1}/blobstores", headers=admin).json()}
    assert (listed["big"]["blobCount"], listed["big"]["totalSizeInBytes"]) == (1, 64)
    assert listed["default"]["blobCount"] == 0
    quota = urllib3.request("GET", f"{one.url}{V1}/blobstores/big/quota-status", headers=admin).json()
    assert quota["isViolation"] is True and "64" in quota["message"]

    assert urllib3.request("PUT", f"{one.url}{V1}/blobstores/file/big", headers=admin,
                           json={"softQuota": {"type": "spaceUsedQuota", "limit": 1000}}).status == 204
    assert urllib3.request("GET", f"{two.url}{V1}/blobstores/big/quota-status",
                           headers=admin).json()["isViolation"] is False

    # survives a restart
    restarted = stowage_factory(data_dir=tmp_path / "shared")
    assert "big" in restarted.stowage.blob_stores()

    in_use = urllib3.request("DELETE", f"{one.url}{V1}/blobstores/big", headers=admin)
    assert in_use.status == 400 and b"on-big" in in_use.data
    assert urllib3.request("DELETE", f"{one.url}{V1}/blobstores/default", headers=admin).status == 400
    assert urllib3.request("DELETE", f"{one.url}{V1}/repositories/on-big", headers=admin).status == 204
    assert urllib3.request("DELETE", f"{one.url}{V1}/blobstores/big", headers=admin).status == 204
    assert urllib3.request("DELETE", f"{one.url}{V1}/blobstores/big", headers=admin).status == 404
    assert {b["name"] for b in urllib3.request("GET", f"{two.url}{V1}/blobstores", headers=admin).json()} == {"default"}
    assert urllib3.request("GET", f"{one.url}{V1}/blobstores/nope/quota-status", headers=admin).status == 404
